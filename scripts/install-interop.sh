#!/usr/bin/env bash
# Install the SOAP clients of other stacks that tests/server/test_interop.py drives
# (marker "interop"), from Debian 12's packages:
#   php-cli php-soap       PHP's SoapClient
#   php-curl               curl in PHP: the SMS Partner vendor page's PHP sample
#   mono-devel             Mono: wsdl (the wsdl.exe proxy generator), mcs, mono
#   jaxws                  JAX-WS RI 2.3 command line tools: /usr/bin/wsimport (pulls in
#                          libjaxws-java, whose jaxws-rt.jar is the client runtime)
#   default-jdk-headless   javac (the JDK 17 no longer ships JAX-WS; the jars above do)
# Safe to run again: when every tool is already there it changes nothing and runs no apt.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(php-cli php-soap php-curl mono-devel jaxws default-jdk-headless)

missing() {
  local tool
  for tool in php wsdl mcs mono wsimport javac java; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool"; return 0; }
  done
  # not "php -m | grep -q": with pipefail, grep's early exit fails the pipe (SIGPIPE)
  local modules
  modules=$'\n'"$(php -m 2>/dev/null)"$'\n'
  [[ $modules == *$'\n'soap$'\n'* ]] || { echo "php-soap"; return 0; }
  [[ $modules == *$'\n'curl$'\n'* ]] || { echo "php-curl"; return 0; }
  [ -f /usr/share/java/jaxws-rt.jar ] || { echo "jaxws-rt.jar"; return 0; }
  return 1
}

what=$(missing) || exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-interop: $what is missing and installing needs root: apt-get install ${packages[*]}" >&2
    exit 1
  }
  sudo=(sudo)
fi

echo "install-interop: $what is missing; installing ${packages[*]} with apt" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${sudo[@]}" apt-get update -qq &&
       "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-interop: apt-get failed" >&2
  exit 1
fi

if what=$(missing); then
  echo "install-interop: $what is still missing after installing ${packages[*]}" >&2
  exit 1
fi
