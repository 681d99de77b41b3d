build-clang/obj/lib/chars.o: lib/chars.c lib/chars_int.h

lib/chars_int.h:
