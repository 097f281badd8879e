import Postgres

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
        // Conversations with a gap-free seq, members with read pointers, messages with an idempotency
        // key (the message path, read pointers and data model of docs/ARCHITECTURE.md).
        // unique(conversation_id, seq) is also the history index.
        // conversations.last_message_id has no foreign key: it is written with the message in one
        // transaction, and a key would cost an index probe on every send. Deleting a user who sent
        // messages is refused (no cascade): it would punch holes in conversations' seq sequences.
        PostgresMigration(version: 3, name: "messages", sql: """
            CREATE TABLE conversations (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind text NOT NULL CONSTRAINT conversations_kind CHECK (kind IN ('direct', 'room')),
                direct_key text,
                name text,
                created_by bigint REFERENCES users (id) ON DELETE SET NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                last_seq bigint NOT NULL DEFAULT 0,
                last_message_id bigint,
                last_message_at timestamptz,
                CONSTRAINT conversations_direct_key_key UNIQUE (direct_key),
                CONSTRAINT conversations_direct_has_key CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
                CONSTRAINT conversations_last_seq_nonnegative CHECK (last_seq >= 0)
            );
            CREATE TABLE conversation_members (
                conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                role text NOT NULL DEFAULT 'member' CONSTRAINT conversation_members_role CHECK (role IN ('admin', 'member')),
                joined_at timestamptz NOT NULL DEFAULT now(),
                last_read_seq bigint NOT NULL DEFAULT 0,
                last_delivered_seq bigint NOT NULL DEFAULT 0,
                PRIMARY KEY (conversation_id, user_id)
            );
            CREATE INDEX conversation_members_user_idx ON conversation_members (user_id);
            CREATE TABLE messages (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                conversation_id bigint NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                seq bigint NOT NULL,
                sender_id bigint NOT NULL REFERENCES users (id),
                client_msg_id text NOT NULL,
                type text NOT NULL DEFAULT 'text' CONSTRAINT messages_type CHECK (type IN ('text', 'image', 'file', 'voice')),
                content text NOT NULL,
                attachment_url text,
                created_at timestamptz NOT NULL DEFAULT now(),
                edited_at timestamptz,
                deleted_at timestamptz,
                CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq),
                CONSTRAINT messages_sender_client_msg_id_key UNIQUE (sender_id, client_msg_id)
            );
            """),
        // Username prefix search (GET /api/users?query=): a byte-order index, so a prefix is one
        // range scan whatever the database's collation.
        PostgresMigration(version: 4, name: "username_search", sql: """
            CREATE INDEX users_username_search_idx ON users ((lower(username) COLLATE "C"));
            """),
        // The fence of the sharded command streams (issue 12): a shard's new owner advances its
        // epoch; every batch transaction checks it, so a worker that lost its lease cannot commit.
        PostgresMigration(version: 5, name: "shard_epochs", sql: """
            CREATE TABLE shard_epochs (
                shard integer PRIMARY KEY CHECK (shard >= 0),
                epoch bigint NOT NULL CHECK (epoch > 0),
                owner text NOT NULL,
                taken_at timestamptz NOT NULL DEFAULT now()
            );
            """),
        // Rooms (issue 13): a room is a conversation of kind 'room' with a name, an optional
        // description, privacy, an invite code (private rooms; unique, so a lookup by code is one
        // index probe), a member count kept by the writers, and the time it was archived (its last
        // member left) or deleted (by an admin). Direct conversations have none of these.
        PostgresMigration(version: 6, name: "rooms", sql: """
            ALTER TABLE conversations
                ADD COLUMN description text,
                ADD COLUMN is_private boolean NOT NULL DEFAULT false,
                ADD COLUMN invite_code text,
                ADD COLUMN member_count integer,
                ADD COLUMN archived_at timestamptz,
                ADD COLUMN deleted_at timestamptz,
                ADD CONSTRAINT conversations_invite_code_key UNIQUE (invite_code),
                ADD CONSTRAINT conversations_room_fields CHECK (
                    (kind = 'room') = (name IS NOT NULL) AND (kind = 'room') = (member_count IS NOT NULL)
                    AND (kind = 'room' OR (description IS NULL AND invite_code IS NULL AND NOT is_private))),
                ADD CONSTRAINT conversations_room_name_length CHECK (name IS NULL OR char_length(name) BETWEEN 1 AND 100),
                ADD CONSTRAINT conversations_room_description_length CHECK (description IS NULL OR char_length(description) <= 1000),
                ADD CONSTRAINT conversations_member_count_nonnegative CHECK (member_count IS NULL OR member_count >= 0);
            -- Public rooms by name (the room directory: a prefix is one range scan).
            CREATE INDEX conversations_public_rooms_idx ON conversations ((lower(name) COLLATE "C"))
                WHERE kind = 'room' AND NOT is_private AND archived_at IS NULL AND deleted_at IS NULL;
            -- A room's members in join order (the oldest is promoted when the last admin leaves).
            CREATE INDEX conversation_members_joined_idx ON conversation_members (conversation_id, joined_at, user_id);
            """),
        // Room commands applied, by stream entry ("<shard>/<id>"), with their result: a command
        // redelivered after its commit (a worker died before acknowledging it) gets the same answer
        // again instead of being applied twice. Rows older than a day are deleted by the workers.
        PostgresMigration(version: 7, name: "room_commands", sql: """
            CREATE TABLE room_commands (
                entry text PRIMARY KEY,
                result text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX room_commands_applied_idx ON room_commands (applied_at);
            """),
        // Message changes (issue 14): every edit or delete advances its conversation's `version`
        // by one and stamps the message with it, so `sync` finds a conversation's changes since a
        // version with one index range.
        PostgresMigration(version: 8, name: "message_changes", sql: """
            ALTER TABLE conversations ADD COLUMN version bigint NOT NULL DEFAULT 0;
            ALTER TABLE messages ADD COLUMN version bigint NOT NULL DEFAULT 0;
            CREATE INDEX messages_changes_idx ON messages (conversation_id, version) WHERE version > 0;
            """),
        // Message search (issue 14): case-insensitive substrings through trigrams (`pg_trgm`, a
        // trusted extension: the database owner may create it; it goes to `public`, and the index
        // names its operator class there, so a schema-scoped `search_path` still finds it) and
        // words through a `simple` text-search vector. Deleted messages are in neither index.
        PostgresMigration(version: 9, name: "message_search", sql: """
            CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
            CREATE INDEX messages_content_trgm_idx ON messages USING gin (content public.gin_trgm_ops) WHERE deleted_at IS NULL;
            CREATE INDEX messages_content_words_idx ON messages USING gin (to_tsvector('simple', content)) WHERE deleted_at IS NULL;
            """),
        // Message types and attachments (issue 14): `emoji` joins the types; an attachment may
        // name its file, size and media type. The rules are `AttachmentRules`'; the table keeps
        // the type list and non-negative sizes.
        PostgresMigration(version: 10, name: "message_attachments", sql: """
            ALTER TABLE messages
                DROP CONSTRAINT messages_type,
                ADD CONSTRAINT messages_type CHECK (type IN ('text', 'image', 'file', 'emoji', 'voice')),
                ADD COLUMN attachment_name text,
                ADD COLUMN attachment_size bigint CONSTRAINT messages_attachment_size CHECK (attachment_size >= 0),
                ADD COLUMN mime_type text;
            """),
        // Reactions (issue 14): one row per user, message and emoji; a message's summary is an
        // index range on the primary key.
        PostgresMigration(version: 11, name: "message_reactions", sql: """
            CREATE TABLE message_reactions (
                message_id bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
                user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                emoji text NOT NULL CONSTRAINT message_reactions_emoji_length CHECK (octet_length(emoji) BETWEEN 1 AND 128),
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (message_id, emoji, user_id)
            );
            CREATE INDEX message_reactions_user_idx ON message_reactions (user_id, message_id);
            """),
        // Profiles (issue 14): an avatar URL and a status line, shown to other users.
        PostgresMigration(version: 12, name: "profiles", sql: """
            ALTER TABLE users
                ADD COLUMN avatar_url text CONSTRAINT users_avatar_url_length CHECK (octet_length(avatar_url) <= 2048),
                ADD COLUMN status_text text CONSTRAINT users_status_text_length CHECK (char_length(status_text) <= 140);
            """),
        // When a message last changed (edit, delete, reaction; issue 15): connection state recovery
        // replays the changes made while a socket was away. Partial: most messages never change.
        PostgresMigration(version: 13, name: "message_changed_at", sql: """
            ALTER TABLE messages ADD COLUMN changed_at timestamptz;
            CREATE INDEX messages_changed_idx ON messages (conversation_id, changed_at) WHERE changed_at IS NOT NULL;
            """),
    ]
}
