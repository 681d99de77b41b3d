build-clang/pic/lib/tcp_bytes.o: lib/tcp_bytes.c lib/addr_int.h

lib/addr_int.h:
