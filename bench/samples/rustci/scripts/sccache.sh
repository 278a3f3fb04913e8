#!/bin/sh
# Stand-in for rust-lang/rust's scripts/sccache.sh (which downloads an sccache release): install a
# pass-through compiler wrapper, so the image has the same shape without the network.
set -eu
cat > /usr/local/bin/sccache <<'WRAPPER'
#!/bin/sh
exec "$@"
WRAPPER
chmod +x /usr/local/bin/sccache
sccache true
