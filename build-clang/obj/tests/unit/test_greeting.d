build-clang/obj/tests/unit/test_greeting.o: tests/unit/test_greeting.c \
  tests/unit/../../src/greeting.h include/sockit/framing.h

tests/unit/../../src/greeting.h:

include/sockit/framing.h:
