/// The database schema, as versioned migrations applied at start-up under an advisory lock.
/// Append new versions; never edit one that has shipped.
package enum ChatSchema {
    package static let migrations: [PostgresMigration] = [
        PostgresMigration(version: 1, name: "users", sql: """
            CREATE TABLE users (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                username text NOT NULL,
                email text NOT NULL,
                password_hash text NOT NULL,
                display_name text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                last_seen_at timestamptz,
                CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,32}$'),
                CONSTRAINT users_email_lower CHECK (email = lower(email))
            );
            CREATE UNIQUE INDEX users_username_key ON users (lower(username));
            CREATE UNIQUE INDEX users_email_key ON users (email);
            """),
        PostgresMigration(version: 2, name: "refresh_tokens", sql: """
            CREATE TABLE refresh_tokens (
                id text PRIMARY KEY,
                family_id text NOT NULL,
                user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                secret_hash text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL,
                rotated_at timestamptz,
                revoked_at timestamptz
            );
            CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
            CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
            """),
    ]
}
