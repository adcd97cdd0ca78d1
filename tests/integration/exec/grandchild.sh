#!/bin/sh
# A handler process whose task starts a background job (a grandchild of the
# worker, `sleep 300`, keeping the handler's stdout open) and writes its pid
# to the file $2, then, as named by $1:
#   hang   ignores the cancel and never answers (ended by timeout or cancel)
#   crash  kills itself with SIGKILL without answering, once the file
#          $2.go exists (the test has seen the grandchild alive by then;
#          it waits at most 20 s for it)
mode=$1
pidfile=$2
echo '{"type":"ready","v":1,"runner":"sh grandchild"}'
read -r _
sleep 300 &
echo $! >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
case $mode in
  hang) while :; do sleep 1; done ;;
  crash)
    n=0
    while [ ! -e "$pidfile.go" ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n + 1)); done
    kill -9 $$ ;;
esac
