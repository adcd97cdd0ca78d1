#!/bin/sh
# A handler process that misbehaves in the way named by $1, after a proper
# "ready": it reads one task line first, then
#   garbage    answers with a line that is not JSON
#   unknown    answers with a message of an unknown type
#   nulid      answers with a result for its task's id followed by a NUL
#   huge       answers with a 100 MB line
#   closeout   closes its stdout and lives on
#   flood      sends 20000 progress messages, then the result
#   deaf       never reads stdin and never answers
#   dies       exits with status 3 a moment after its ready, while idle
mode=$1
echo '{"type":"ready","v":1,"runner":"sh hostile"}'
[ "$mode" = deaf ] && exec sleep 1000
[ "$mode" = dies ] && { sleep 0.05; exit 3; }
read -r task
id=$(printf '%s' "$task" | sed 's/.*"id":"\([^"]*\)".*/\1/')
case $mode in
  garbage) echo 'this is not json {' ;;
  unknown) echo "{\"type\":\"bogus\",\"id\":\"$id\"}" ;;
  nulid) echo "{\"type\":\"result\",\"id\":\"$id\\u0000x\",\"result\":1}" ;;
  huge) head -c 104857600 /dev/zero | tr '\0' 'x' ;;
  closeout) exec 1>&-; sleep 1000 ;;
  flood)
    i=0
    while [ $i -lt 20000 ]; do echo "{\"type\":\"progress\",\"id\":\"$id\",\"percent\":$((i % 100))}"; i=$((i + 1)); done
    echo "{\"type\":\"result\",\"id\":\"$id\",\"result\":{\"flooded\":true}}" ;;
esac
# Serve nothing more; a later task finds a fresh process or this one.
cat >/dev/null
