# plot.gp - drain rate against the number of rtq-worker processes, from
# scripts/bench.sh: the median of the runs as a line, each run as points,
# and the rate at which Redis alone saturates one core (1e6 / its CPU
# microseconds per task in that step).
#   gnuplot -e "median='m.dat'; runs='r.dat'; outfile='x.png'" bench/plot.gp
# Both files: "workers tasks_per_s redis_bound_tasks_per_s" lines
# (rtq-bench --scaling-dat); r.dat holds the lines of every run.
if (!exists("target")) target = 50000
set terminal pngcairo size 900,540 font "sans,11"
set output outfile
set title "rtq: drain rate by rtq-worker processes (no-op tasks, 50 slots each)"
set xlabel "rtq-worker processes"
set ylabel "tasks completed per second"
set xtics 1
set offsets 0.4, 0.4, 0, 0
set yrange [0:target * 1.2]
set grid ytics
set key at graph 0.98, graph 0.7 right top
set format y "%.0f"
plot target title "target, one worker process" with lines dashtype 2 lw 2 lc rgb "#b00000", \
     median using 1:3 title "Redis-CPU bound (1 core / Redis CPU per task)" with linespoints dashtype 3 pt 2 lc rgb "#208020", \
     runs using 1:2 title "each run" with points pt 7 ps 0.8 lc rgb "#8080c0", \
     median using 1:2 title "median of runs" with linespoints lw 2 pt 5 lc rgb "#0040a0"
