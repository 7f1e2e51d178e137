# shellcheck shell=sh
# Guest-side benchmarks (see lab.sh bench).
run_bench() {
    echo "bench: not implemented yet" >"$R/bench.txt"
}
