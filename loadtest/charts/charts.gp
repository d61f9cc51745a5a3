# The bench's charts, drawn from the tables chart_data.py writes:
#   gnuplot -e "data='DIR'; out='loadtest/charts'" loadtest/charts/charts.gp
# loadtest/bench runs it after every run (and for --from DIR).

load data.'/vars.gp'

set terminal svg size 820,460 dynamic font 'DejaVu Sans,13' background '#ffffff'
set encoding utf8
set border 3 lc '#555555'
set tics nomirror textcolor '#333333'
set grid ytics lc '#dddddd' lt 1
set datafile commentschars '#'
set style fill solid 0.85 noborder
# The key's style, and the line under each title that says where the data comes from.
key_style = "set key default; set key noopaque nobox textcolor '#333333'"
note(text) = sprintf('set label 99 "%s" at graph 0, graph 1.06 left font ",10" textcolor "#666666"', text)
medians = sprintf('median of %d run%s', runs, runs > 1 ? 's' : '')

# ------------------------------------------------------------ throughput
set output out.'/throughput.svg'
eval key_style
eval note(source.', '.medians.'; bars: range of the runs')
set title "Reservations per second on one hot event, by strategy (".conns." connections, ".steady_s." s)" offset 0,1
set ylabel 'req/s'
set yrange [0:*]
set xrange [-0.6:nstrat-0.4]
set boxwidth 0.6
set key top right
set format y '%.0s%c'
set xtics scale 0
stats data.'/throughput.dat' using 4 nooutput
set yrange [0:STATS_max * 1.3]
plot data.'/throughput.dat' using 0:2:(0.6):5 with boxes lc rgb variable notitle, \
     '' using 0:3:(0):($4-$3) with vectors heads size 0.06,90 lc '#333333' lw 1.2 title 'range of the runs', \
     '' using 0:(NaN):xtic(1) with points notitle, \
     '' using 0:4:6 with labels offset 0,0.8 font ',11' textcolor '#222222' notitle, \
     pgb_best with lines dt 2 lw 1.5 lc '#555555' title sprintf('pgbench, same transaction: %.0f tps', pgb_best)
unset format
set format y '%g'

# ------------------------------------------------------------ latency curves
set output out.'/latency.svg'
eval note(source.', '.medians.' at each percentile')
set title 'Latency by percentile on one hot event, by strategy' offset 0,1
set ylabel 'latency (ms, log scale)'
set xlabel 'percentile'
set logscale y
set yrange [*:*]
set xrange [0:4]
set xtics ('0' 0, '50' log10(2), '90' 1, '99' 2, '99.9' 3, '99.99' 4)
set key bottom right
plot for [i=0:nstrat-1] data.'/latency.dat' index i using 1:2 \
     with linespoints lw 2 pt 7 ps 0.5 lc rgb word(colours, i+1) \
     title word(strategies, i+1)
unset logscale y
unset xlabel
set xtics autofreq scale 1

# ------------------------------------------------------------ the spike over time
set terminal svg size 820,520 dynamic font 'DejaVu Sans,13' background '#ffffff'
set output out.'/spike.svg'
eval note(source.sprintf(', run %d of %d (the median wall time)', spike_run, runs))
set title sprintf("The spike over time: %s reservations on %s fresh connections at once, %d tickets (for-update)", spike_n, spike_n, tickets) offset 0,1
set xlabel 'time since the first connect (ms)'
set ylabel sprintf('responses per %d ms', bin_ms)
set y2label 'tickets granted so far'
set y2tics nomirror
set y2range [0:tickets * 1.15]
stats data.'/spike.dat' using ($2+$3+$4) nooutput
set yrange [0:STATS_max * 1.15]
set xrange [0:*]
set key outside bottom center horizontal maxcols 3 font ',11' samplen 2
set boxwidth bin_ms * 0.9 absolute
plot data.'/spike.dat' using 1:($2+$3+$4) with boxes lc '#9aa5b1' title '409 sold\_out', \
     '' using 1:($2+$4) with boxes lc '#d62728' title 'other (5xx, transport)', \
     '' using 1:2 with boxes lc '#2ca02c' title '201 granted', \
     '' using 1:5 with steps lw 1.5 lc '#1f77b4' title 'GET /livez spike, same server', \
     '' using 1:6 axes x1y2 with lines lw 2 lc '#145a14' title 'granted so far (right)'
unset y2label
unset y2tics
set y2range [*:*]
eval key_style
set terminal svg size 820,460 dynamic font 'DejaVu Sans,13' background '#ffffff'

# ------------------------------------------------------------ each strategy's spike
set output out.'/spike_strategies.svg'
eval note(source.sprintf(", each strategy's run of median wall time (of %d)", runs))
set title sprintf("The same spike on each strategy: share of the %s requests answered", spike_n) offset 0,1
set xlabel 'time since the first connect (ms)'
set ylabel 'answered (%)'
set yrange [0:105]
set xrange [0:*]
set key bottom right
plot for [i=0:nstrat-1] data.'/spike_strategies.dat' index i using 1:2 \
     with lines lw 2 lc rgb word(colours, i+1) title word(strategies, i+1)
unset xlabel

# ------------------------------------------------------------ oversold tickets
set output out.'/oversell.svg'
eval note(source.sprintf(', every run (1 to %d, left to right)', runs))
set title sprintf("Tickets sold beyond the %d that exist, after each %s-request spike", tickets, spike_n) offset 0,1
set ylabel 'oversold tickets'
set yrange [0:(worst < 4 ? 5 : worst * 1.25)]
set xrange [-0.6:nstrat-0.4]
set key top left
set boxwidth 0.8 / runs * 0.85
set xtics scale 0
set ytics 1
if (worst > 10) set ytics autofreq
plot for [r=1:runs] data.'/oversell.dat' using ($0 - 0.4 + (r - 0.5) * 0.8 / runs):(column(r+1)):(column(runs+2)) \
        with boxes lc rgb variable notitle, \
     for [r=1:runs] '' using ($0 - 0.4 + (r - 0.5) * 0.8 / runs):(column(r+1)):(sprintf('%d', column(r+1))) \
        with labels offset 0,0.6 font ',10' textcolor '#222222' notitle, \
     '' using 0:(0):xtic(1) with points pt -1 notitle
