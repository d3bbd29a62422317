#!/usr/bin/env bash
# Generates the built-in IVR prompts into appliance/media/prompts/builtin/
# with espeak-ng (speech) and sox (resampling, trimming, tones): 8 kHz,
# mono, 16-bit signed PCM WAV, band-limited to 300-3400 Hz, silence
# trimmed, speech normalised to -1 dBFS and tones to -3 dBFS.
# A development-time tool: the WAVs are committed and embedded in the
# binary; the appliance never runs this. Re-run it after changing a text
# below, then commit the WAVs and update appliance/media/prompts/README.md.
#
#   scripts/gen-prompts.sh            # all prompts
#   scripts/gen-prompts.sh beep       # only the named ones
#
# The output is repeatable on one machine (sox -R); another espeak-ng or
# sox version may change the audio slightly.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  echo "gen-prompts: ${missing[*]} not found; on Debian/Ubuntu: sudo apt-get install -y espeak-ng sox" >&2
  exit 1
fi

out=appliance/media/prompts/builtin
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Voice and speed of every spoken prompt.
voice=en-us
speed=150 # words per minute

# Spoken prompts: name|text. Keep them short: every second is 16 KB.
speech=(
  "main-menu|Thank you for calling. Please enter the number of the option you want."
  "invalid-option|Sorry, that is not a valid option."
  "no-input|Sorry, we did not receive your selection."
  "goodbye|Goodbye."
  "please-hold|Please hold."
  "transferring|Transferring your call."
  "callout-greeting|You have been invited to join a call. Press 1 to join."
  "not-available|The person you are calling is not available."
  "vm-greeting-default|The person you are calling is not available. Please leave a message after the tone."
  "vm-no-messages|You have no messages."
  "vm-menu|Press 1 to replay, 7 to delete, 9 to save, or pound for the next message."
  "vm-you-have|You have"
  "vm-new-messages|new messages"
  "vm-saved-messages|saved messages"
  "vm-and|and"
  "vm-many|more than twenty"
  "vm-deleted|Message deleted."
  "vm-saved|Message saved."
  "vm-no-more|You have no more messages."
  "num-0|zero"
  "num-1|one"
  "num-2|two"
  "num-3|three"
  "num-4|four"
  "num-5|five"
  "num-6|six"
  "num-7|seven"
  "num-8|eight"
  "num-9|nine"
  "num-10|ten"
  "num-11|eleven"
  "num-12|twelve"
  "num-13|thirteen"
  "num-14|fourteen"
  "num-15|fifteen"
  "num-16|sixteen"
  "num-17|seventeen"
  "num-18|eighteen"
  "num-19|nineteen"
  "num-20|twenty"
  "conference-pin|Please enter the conference PIN, followed by the pound key."
  "conference-pin-invalid|Sorry, that PIN is not valid."
  "conference-joining|Joining the call."
)

# Call park (issue 12): "Parked on slot" is followed by the slot's number
# (the num-N prompts above).
speech+=(
  "park-parked|Parked on slot"
  "park-empty|There is no call parked on that slot."
  "park-full|Sorry, every park slot is in use."
)

# Tones: name|frequencies in Hz, one segment each, played in turn. Join
# rises, leave falls.
tones=(
  "beep|1000"
  "join-tone|660 990"
  "leave-tone|990 660"
)
beep_seconds=0.3 # one segment of beep
step_seconds=0.12 # one segment of the other tones

only=("$@")
want() { # want NAME: true when NAME was asked for, or nothing was
  [ ${#only[@]} -eq 0 ] && return 0
  local w
  for w in "${only[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

# The output format: 8 kHz mono 16-bit signed PCM.
final=(-R -r 8000 -c 1 -b 16 -e signed-integer)

made=0
for entry in "${speech[@]}"; do
  name=${entry%%|*} text=${entry#*|}
  want "$name" || continue
  espeak-ng -v "$voice" -s "$speed" -w "$tmp/$name.raw.wav" "$text"
  # Trim silence below 0.5% at both ends (reverse, trim, reverse), keep 50 ms
  # of padding so the first syllable is not clipped by a jitter buffer.
  sox -R "$tmp/$name.raw.wav" "${final[@]}" "$out/$name.wav" \
    highpass 300 lowpass 3400 \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
    norm -1 pad 0.05 0.05
  made=$((made + 1))
done
for entry in "${tones[@]}"; do
  name=${entry%%|*} freqs=${entry#*|}
  want "$name" || continue
  len=$step_seconds
  [ "$name" = beep ] && len=$beep_seconds
  parts=()
  for f in $freqs; do
    # Each segment fades in and out over 10 ms so the joins do not click.
    sox -R -n "${final[@]}" "$tmp/$name-$f.wav" synth "$len" sine "$f" fade 0.01 "$len" 0.01
    parts+=("$tmp/$name-$f.wav")
  done
  sox -R "${parts[@]}" "${final[@]}" "$out/$name.wav" norm -3
  made=$((made + 1))
done

[ "$made" -gt 0 ] || { echo "gen-prompts: no prompt named ${only[*]}" >&2; exit 1; }
echo "gen-prompts: $made prompt(s) in $out ($(du -sh "$out" | cut -f1) in all)"
