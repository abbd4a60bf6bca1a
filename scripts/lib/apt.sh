# Sourced by the test.d scripts: `apt_install PKG...` installs Debian
# packages the tests need (as root; says what is missing otherwise).
# The caller sets `apt_who` to its own name for the message.
apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "${apt_who:-test}: need root to install $* (apt-get)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
