build-clang/obj/src/bench_json.o: src/bench_json.c src/bench_json.h

src/bench_json.h:
