-- The broker's durable state: what it knows of hosts and their credentials. Nothing here
-- can impersonate a host: public keys, grants, hashes of one-time enrollment tokens, and
-- revoked token ids.

-- Token ids (jti) refused until keep_until (unix seconds), past which no token carrying
-- them can be valid any more (identity_store.h says why).
CREATE TABLE IF NOT EXISTS revoked_tokens (
  jti TEXT PRIMARY KEY NOT NULL,
  revoked_at INTEGER NOT NULL,
  keep_until INTEGER NOT NULL
);

-- Enrolled hosts. public_key is the host's SubjectPublicKeyInfo PEM, set when the host
-- proved it holds the matching private key; caps is the grant (space-separated), which
-- bounds every token of the host. A revoked host (revoked_at not NULL) is refused.
CREATE TABLE IF NOT EXISTS hosts (
  host_id TEXT PRIMARY KEY NOT NULL,
  caps TEXT NOT NULL,
  public_key TEXT,
  enrolled_at INTEGER,
  revoked_at INTEGER
);

-- Pending one-time enrollment tokens, by the SHA-256 of the token (hex): the token itself
-- is never stored. A row is deleted when it is used, and when it expires.
CREATE TABLE IF NOT EXISTS enrollments (
  token_sha256 TEXT PRIMARY KEY NOT NULL,
  host_id TEXT NOT NULL,
  caps TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
