# Settings for the embedded default on this machine kind; source it. Each is an ordinary
# IMAGEBUILD_NB_* setting (see the configuration reference) with a value the user may override.
#  - default bases (python:X.Y-slim) come from the local registry, which the setup filled;
#  - RUN steps use host networking (dockerd runs with --iptables=false: no NAT on the bridge);
#  - RUN steps trust the host's CA bundle (outbound HTTPS goes through a re-signing proxy).
export IMAGEBUILD_NB_BASE_IMAGE_MIRROR="${IMAGEBUILD_NB_BASE_IMAGE_MIRROR:-${PLAIN_REGISTRY:-localhost:5001}}"
export IMAGEBUILD_NB_NETWORK_MODE="${IMAGEBUILD_NB_NETWORK_MODE:-host}"
_ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -f $_ca_bundle ]] && export IMAGEBUILD_NB_EXTRA_CA_FILES="${IMAGEBUILD_NB_EXTRA_CA_FILES:-$_ca_bundle}"
unset _ca_bundle
