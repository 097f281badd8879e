import Glibc
import Testing
@testable import Gateway
@testable import Shared

/// Who a user's contacts are, against a real PostgreSQL (`TEST_DATABASE_URL`), in a schema of its
/// own: direct conversations always; a room's members only with `PRESENCE_ROOM_CONTACTS` (issue 13).
@Suite struct ContactDirectoryTests {
    init() { EventLoop.shared.startInBackground() }

    @Test @LoopActor func roomMembersAreContactsOnlyWhenTheSwitchSaysSo() async throws {
        try await TestSchema.with("contacts") { database in
            var ids: [Int64] = []
            for name in ["alice", "bob", "carol", "dave"] {
                let rows = try await database.query("""
                    INSERT INTO users (username, email, password_hash, display_name) VALUES ($1, $2, 'x', $1) RETURNING id
                    """, [.string(name), .string("\(name)@example.com")])
                ids.append(try rows[0].int64("id"))
            }
            let (alice, bob, carol, dave) = (ids[0], ids[1], ids[2], ids[3])
            // alice and bob talk directly; alice, carol and dave share a room.
            try await database.query("""
                WITH direct AS (INSERT INTO conversations (kind, direct_key) VALUES ('direct', $2) RETURNING id)
                INSERT INTO conversation_members (conversation_id, user_id) SELECT direct.id, u FROM direct, unnest($1::bigint[]) AS u
                """, [.string(PostgresArrayLiteral.integers([alice, bob])), .string("\(alice):\(bob)")])
            try await database.query("""
                WITH room AS (INSERT INTO conversations (kind, name, member_count) VALUES ('room', 'team', 3) RETURNING id)
                INSERT INTO conversation_members (conversation_id, user_id) SELECT room.id, u FROM room, unnest($1::bigint[]) AS u
                """, [.string(PostgresArrayLiteral.integers([alice, carol, dave]))])

            let directOnly = ContactDirectory(database: database)
            #expect(try await directOnly.contacts(of: alice)?.contacts.map(\.id) == [bob])
            #expect(try await directOnly.contacts(of: alice, among: [bob, carol, dave]) == [bob])
            #expect(try await directOnly.peers(of: alice, among: [bob, carol, dave]) == [bob, carol, dave], "peers may be watched either way")
            let offline = try await directOnly.recordLastSeen([(userID: carol, lastSeenMilliseconds: 1_800_000_000_000)])
            #expect(offline.first?.contacts == [])

            let withRooms = ContactDirectory(database: database, roomMembersAreContacts: true)
            #expect(try await withRooms.contacts(of: alice)?.contacts.map(\.id) == [bob, carol, dave])
            #expect(try await withRooms.contacts(of: alice, among: [bob, carol, dave]) == [bob, carol, dave])
            let announced = try await withRooms.recordLastSeen([(userID: carol, lastSeenMilliseconds: 1_800_000_000_000)])
            #expect(Set(announced.first?.contacts ?? []) == [alice, dave])
        }
    }
}
