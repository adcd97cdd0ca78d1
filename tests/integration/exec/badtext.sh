#!/bin/sh
# A handler process that reports progress text no handler should send, as
# named by $1, then its result:
#   escaped  a valid JSON line whose message holds ESC[2J and an OSC title
#   raw      a line whose message holds bytes that are not UTF-8 (\xff\xfe)
mode=$1
echo '{"type":"ready","v":1,"runner":"sh badtext"}'
while read -r task; do
  id=$(printf '%s' "$task" | sed 's/.*"id":"\([^"]*\)".*/\1/')
  case $mode in
    escaped) printf '{"type":"progress","id":"%s","percent":50,"message":"50%% \\u001b[2J\\u001b]0;owned\\u0007 end"}\n' "$id" ;;
    raw) printf '{"type":"progress","id":"%s","percent":50,"message":"50%%\377\376 \033[2J end"}\n' "$id" ;;
  esac
  printf '{"type":"result","id":"%s","result":{"ok":true}}\n' "$id"
done
