#!/usr/bin/env bash
# Checks the system libraries the app needs beyond its Python packages: Qt's X11 platform plugin (xcb)
# and PortAudio for the microphone and the speaker. Prints the one Debian/Ubuntu line that installs
# what is missing; exit status 1 when something is missing, 0 otherwise. With QT_QPA_PLATFORM=offscreen
# (headless) the X11 libraries are not needed and are not checked.
set -uo pipefail

QT_X11=(  # soname:package, what Qt's xcb plugin loads (Qt names only the first one it misses)
  libxcb-cursor.so.0:libxcb-cursor0 libxcb-icccm.so.4:libxcb-icccm4 libxcb-keysyms.so.1:libxcb-keysyms1
  libxcb-image.so.0:libxcb-image0 libxcb-randr.so.0:libxcb-randr0 libxcb-render-util.so.0:libxcb-render-util0
  libxcb-shape.so.0:libxcb-shape0 libxcb-xkb.so.1:libxcb-xkb1 libxkbcommon-x11.so.0:libxkbcommon-x11-0
  libX11-xcb.so.1:libx11-xcb1
)
COMMON=(  # Qt itself, and PortAudio (sounddevice)
  libxkbcommon.so.0:libxkbcommon0 libEGL.so.1:libegl1 libGL.so.1:libgl1 libfontconfig.so.1:libfontconfig1
  libdbus-1.so.3:libdbus-1-3 libportaudio.so.2:libportaudio2
)
wanted=("${COMMON[@]}")
[ "${QT_QPA_PLATFORM:-}" = offscreen ] || wanted+=("${QT_X11[@]}")

known=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | awk '{print $1}')  # one soname a line
missing=()
for entry in "${wanted[@]}"; do
  grep -qxF "${entry%%:*}" <<<"$known" || missing+=("${entry##*:}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system libraries: all found"
  exit 0
fi
echo "missing system libraries (the window or the sound may not work); install them with:"
echo "  sudo apt-get install ${missing[*]}"
exit 1
