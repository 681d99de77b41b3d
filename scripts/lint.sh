#!/usr/bin/env bash
# Static analysis: clang-tidy (.clang-tidy), cppcheck (scripts/cppcheck.supp)
# and scan-build (the clang static analyzer) over lib/, src/, examples/,
# fuzz/ and bench/peers/. Run by `make lint`, which passes LINT_FLAGS (the
# Makefile's compile flags). Prints each finding, then one summary line per
# tool; exits non-zero if any tool found anything.
set -uo pipefail
cd "$(dirname "$0")/.."
out=build/lint
mkdir -p "$out"
flags=${LINT_FLAGS:?run through make lint}
for tool in run-clang-tidy clang-tidy cppcheck scan-build clang; do
    command -v "$tool" >/dev/null || { echo "lint: $tool not found (scripts/deps.sh lint)" >&2; exit 1; }
done
mapfile -t files < <(ls lib/*.c src/*.c examples/*.c fuzz/*.c bench/peers/*.c)

# Compile commands, from the Makefile's own flags (-Isrc: fuzz targets use src/ headers).
/usr/bin/python3 - "$out/compile_commands.json" "$flags" "${files[@]}" <<'PY'
import json, os, shlex, sys
path, flags, files = sys.argv[1], shlex.split(sys.argv[2]), sys.argv[3:]
db = [{"directory": os.getcwd(), "file": f,
       "arguments": ["clang", *flags, "-Isrc", "-c", f, "-o", "/dev/null"]} for f in files]
with open(path, "w") as fh:
    json.dump(db, fh, indent=1)
PY

echo "== clang-tidy =="
run-clang-tidy -quiet -j "${LINT_JOBS:-2}" -p "$out" "${files[@]/#/$PWD/}" > "$out/tidy.log" 2>&1
# one line per finding, file:line:col: warning: ... [check]
sed -e 's/\x1b\[[0-9;]*m//g' -e "s#^$PWD/##" "$out/tidy.log" |
    grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' | sort -u > "$out/tidy.txt"
cat "$out/tidy.txt"

echo "== cppcheck =="
cppcheck -q --std=c11 --enable=warning,style,performance,portability --inline-suppr \
    --suppressions-list=scripts/cppcheck.supp --suppress=missingIncludeSystem \
    -D_GNU_SOURCE -Iinclude -Ilib -Isrc -Ibuild/gen -j "${LINT_JOBS:-2}" --error-exitcode=0 \
    --template='{file}:{line}: {severity}: {message} [{id}]' \
    lib src examples fuzz bench/peers > "$out/cppcheck.log" 2>&1
grep -E '^[^ ]+:[0-9]+: ' "$out/cppcheck.log" | sort -u > "$out/cppcheck.txt"
cat "$out/cppcheck.txt"

echo "== scan-build =="
# A build of its own (build/scan): scan-build sees only what it compiles.
rm -rf build/scan
scan-build -o build/scan/report make -s -j "${LINT_JOBS:-2}" BUILD=build/scan CC=clang \
    build/scan/sockit build/scan/libsockit.a \
    $(ls examples/*.c | sed 's#examples/\(.*\)\.c#build/scan/examples/\1#') \
    $(ls fuzz/fuzz_*.c | sed 's#fuzz/\(.*\)\.c#build/scan/fuzz/\1_replay#') \
    > "$out/scan.log" 2>&1
scan_rc=$?
grep -E '^[^ ]+:[0-9]+:[0-9]+: warning: ' "$out/scan.log" | sort -u > "$out/scan.txt"
cat "$out/scan.txt"
[[ $scan_rc -eq 0 ]] || { tail -20 "$out/scan.log"; echo "scan-build: the build failed"; }

nt=$(wc -l < "$out/tidy.txt"); nc=$(wc -l < "$out/cppcheck.txt"); ns=$(wc -l < "$out/scan.txt")
echo "== lint summary: clang-tidy $nt, cppcheck $nc, scan-build $ns finding(s) (logs in $out/) =="
for t in tidy cppcheck scan; do
    [[ -s $out/$t.txt ]] && sed -E 's/.*\[([^]]+)\]$/\1/' "$out/$t.txt" | sort | uniq -c |
        awk -v t="$t" '{ printf "  %-8s %3d  %s\n", t, $1, $2 }'
done
[[ $nt -eq 0 && $nc -eq 0 && $ns -eq 0 && $scan_rc -eq 0 ]]
