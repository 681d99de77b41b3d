build-clang/pic/lib/alloc.o: lib/alloc.c lib/alloc_int.h

lib/alloc_int.h:
