build-clang/obj/src/i18n.o: src/i18n.c src/i18n.h \
  build-clang/gen/localedir.h

src/i18n.h:

build-clang/gen/localedir.h:
