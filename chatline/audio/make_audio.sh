#!/usr/bin/env bash
# Regenerate the caller recordings: real speech from espeak-ng, as Twilio sends it (8 kHz mono mu-law, headerless).
# Needs espeak-ng and sox (Debian: apt-get install espeak-ng sox). Run from anywhere; writes beside this script.
set -euo pipefail
cd "$(dirname "$0")"
say() {  # say NAME "TEXT" [VOICE]
  local name=$1 text=$2 voice=${3:-en-us}
  espeak-ng -v "$voice" -s 150 -w "/tmp/chatline-$name.wav" "$text"
  # Trim espeak's own leading/trailing silence so each file is just the utterance.
  sox "/tmp/chatline-$name.wav" -r 8000 -c 1 -e mu-law -t raw "$name.ulaw" silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
  rm -f "/tmp/chatline-$name.wav"
}
say hello "hello"
say good "good"
say bad "bad"
say goodbye "goodbye"
say how_are_you "how are you"
say book_a_table "i would like to book a table"
say book_table "book a table"
say for_four_people "for four people"
say what_can_you_do "what can you do"
say special_characters "special characters"
# Out of every grammar above: the offline recognizer must not force it onto a hint.
say weather "the weather is lovely today"

# Turn-taking recordings (chatline/audio/turns/, listed in turns.tsv): backchannels said over a prompt, and sentences
# said in one go or with a pause in the middle ("i'd like to book a table for ... two"), for the turn benchmark.
mkdir -p turns
while IFS=$'\t' read -r name before pause after; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  ( cd turns && say "$name" "$before" )
  if [[ -n "$after" ]]; then
    ( cd turns && say "$name.after" "$after" && sox -r 8000 -c 1 -e mu-law -t raw "$name.ulaw" \
        -r 8000 -c 1 -e mu-law -t raw <(sox -n -r 8000 -c 1 -e mu-law -t raw - trim 0 "$pause") \
        -r 8000 -c 1 -e mu-law -t raw "$name.after.ulaw" -r 8000 -c 1 -e mu-law -t raw "$name.joined.ulaw" \
      && mv "$name.joined.ulaw" "$name.ulaw" && rm "$name.after.ulaw" )
  fi
done < turns.tsv
