build-clang/pic/lib/chars.o: lib/chars.c lib/chars_int.h

lib/chars_int.h:
