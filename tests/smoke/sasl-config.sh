#!/usr/bin/env bash
# Print a heraclitus.yaml enabling SASL (PLAIN + both SCRAMs) for tests/smoke/sasl.py.
set -euo pipefail
BIN=${1:?heraclitus binary}
s256=$("$BIN" scram-credential --mechanism SCRAM-SHA-256 --password sam-pw)
s512=$("$BIN" scram-credential --mechanism SCRAM-SHA-512 --password sue-pw)
cat <<YAML
auth:
  enabled: true
  mechanisms: [PLAIN, SCRAM-SHA-256, SCRAM-SHA-512]
  plain_username: alice
  plain_password: alice-pw
  users:
    - username: sam
      scram_sha_256: "$s256"
    - username: sue
      scram_sha_512: "$s512"
YAML
