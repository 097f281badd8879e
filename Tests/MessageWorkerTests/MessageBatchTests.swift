import Testing
@testable import MessageWorker
@testable import Shared

/// The pure batch planner: seqs, idempotency, pointers, unread counts, replies and events.
@Suite struct MessageBatchTests {
    private static let gateway = ReplyAddress(gateway: "gw", engineSession: "s", ack: 1)

    private static func send(_ entry: String, from sender: Int64, to receiver: Int64, _ content: String = "hi", key: String? = nil) -> BatchCommand {
        BatchCommand(entryID: entry, envelope: CommandEnvelope(
            command: .send(SendMessage(receiverID: receiver, content: content, clientMsgID: key ?? "k-\(entry)")), userID: sender, reply: gateway))
    }

    private static func command(_ entry: String, _ command: ChatCommand, by user: Int64) -> BatchCommand {
        BatchCommand(entryID: entry, envelope: CommandEnvelope(command: command, userID: user, reply: gateway))
    }

    private static func stored(id: Int64, conversation: Int64, seq: Int64, sender: Int64, receiver: Int64, key: String = "old") -> ChatMessageRecord {
        ChatMessageRecord(id: id, conversationID: conversation, seq: seq, senderID: sender, receiverID: receiver, clientMsgID: key,
                          type: .text, content: "stored", attachmentURL: nil, createdAtMilliseconds: 1_000, isRead: false)
    }

    /// Inserted rows as PostgreSQL would return them: ids from 1000 in row order.
    private static func inserted(_ writes: BatchWrites) -> [InsertedMessage] {
        writes.messages.enumerated().map { InsertedMessage(id: 1000 + Int64($0.offset), conversationID: $0.element.conversationID, seq: $0.element.seq, createdAtMilliseconds: 5_000) }
    }

    private static func result(_ outcome: CommandOutcome) -> JSONValue? {
        if case .ok(let value)? = outcome.reply?.outcome { return value }
        return nil
    }

    private static func errorCode(_ outcome: CommandOutcome) -> String? {
        if case .failed(let code, _, _)? = outcome.reply?.outcome { return code }
        return nil
    }

    private static func event(_ outcome: CommandOutcome, _ name: String) -> ChatEvent? {
        outcome.events.first { $0.name == name }
    }

    /// Members (1,2) in conversation 10 and (1,3) in conversation 20, all pointers at `pointer`.
    private static func twoConversations(lastSeq10: Int64 = 0, lastSeq20: Int64 = 0, pointer: Int64 = 0) -> BatchSnapshot {
        var snapshot = BatchSnapshot()
        snapshot.conversations = ["1:2": (id: 10, lastSeq: lastSeq10), "1:3": (id: 20, lastSeq: lastSeq20)]
        for key in [MemberKey(conversationID: 10, userID: 1), MemberKey(conversationID: 10, userID: 2),
                    MemberKey(conversationID: 20, userID: 1), MemberKey(conversationID: 20, userID: 3)] {
            snapshot.pointers[key] = pointer
        }
        return snapshot
    }

    @Test func batchBuildingNamesEveryRowToReadAndLockInOrder() {
        var batch = MessageBatch(commands: [
            Self.send("1-0", from: 3, to: 1),
            Self.send("1-1", from: 1, to: 2),
            Self.send("1-2", from: 2, to: 1),
            Self.command("1-3", .readAll(senderID: 7), by: 1),
            Self.command("1-4", .read(messageID: 55), by: 2),
            Self.command("1-5", .readMany([56, 55, 54]), by: 2),
            Self.command("1-6", .readAll(senderID: 1), by: 1),
        ])
        // readAll names its sender, who must exist too.
        #expect(batch.userIDsToCheck == [1, 2, 3, 7])
        batch.recordExistingUsers([1, 2, 3, 7])
        #expect(batch.conversationsToCreate == [
            ConversationToCreate(directKey: "1:2", createdBy: 1, members: [1, 2]),
            ConversationToCreate(directKey: "1:3", createdBy: 3, members: [1, 3]),
        ])
        // readAll of oneself names no conversation.
        #expect(batch.conversationKeys == ["1:2", "1:3", "1:7"])
        #expect(batch.messageIDs == [54, 55, 56])
        #expect(batch.idempotencyKeys == [IdempotencyKey(senderID: 3, clientMsgID: "k-1-0"), IdempotencyKey(senderID: 1, clientMsgID: "k-1-1"),
                                          IdempotencyKey(senderID: 2, clientMsgID: "k-1-2")])
        var snapshot = Self.twoConversations()
        snapshot.messages[55] = Self.stored(id: 55, conversation: 10, seq: 1, sender: 1, receiver: 2)
        #expect(batch.memberKeys(snapshot) == [MemberKey(conversationID: 10, userID: 1), MemberKey(conversationID: 10, userID: 2),
                                              MemberKey(conversationID: 20, userID: 1), MemberKey(conversationID: 20, userID: 3)])
        #expect(batch.totalUserIDs(snapshot) == [1, 2])
    }

    @Test func sendsInTwoConversationsGetGapFreeSeqsInStreamOrder() throws {
        var batch = MessageBatch(commands: [
            Self.send("1-0", from: 1, to: 2, "a"),
            Self.send("1-1", from: 1, to: 3, "b"),
            Self.send("1-2", from: 2, to: 1, "c"),
            Self.send("1-3", from: 1, to: 2, "d"),
            Self.send("1-4", from: 3, to: 1, "e"),
        ])
        batch.recordExistingUsers([1, 2, 3])
        let writes = batch.plan(Self.twoConversations(lastSeq10: 4, lastSeq20: 0, pointer: 0))
        #expect(writes.messages.map { "\($0.conversationID)/\($0.seq)/\($0.content)" } == ["10/5/a", "20/1/b", "10/6/c", "10/7/d", "20/2/e"])
        // Each sender's pointer ends on its own newest message.
        #expect(writes.pointers.map { "\($0.key.conversationID)/\($0.key.userID)=\($0.lastReadSeq)" } == ["10/1=7", "10/2=6", "20/1=1", "20/3=2"])
        let inserted = Self.inserted(writes)

        let outcomes = try batch.outcomes(inserted: inserted)
        #expect(outcomes.map(\.entryID) == ["1-0", "1-1", "1-2", "1-3", "1-4"])
        let first = outcomes[0]
        #expect(Self.result(first)?["id"] == 1000)
        #expect(Self.result(first)?["seq"] == 5)
        #expect(Self.result(first)?["receiverId"] == 2)
        #expect(Self.result(first)?["isRead"] == false)
        #expect(Self.event(first, "messageSent")?.userID == 1)
        #expect(Self.event(first, "receiveMessage")?.userID == 2)
        #expect(first.events.count == 2)
        #expect(first.reply?.reply == Self.gateway)
        // The message is written once and spliced: every payload reads as if written from its JSON.
        for outcome in outcomes {
            for event in outcome.events {
                #expect(event.encodedData != nil)
                #expect(event.payload() == JSONValue.object(["event": .string(event.name), "data": event.data]).serialized())
            }
            #expect(outcome.reply?.encodedResult != nil)
            #expect(outcome.reply?.payload() == outcome.reply?.json.serialized())
        }
    }

    @Test func unreadCountsAreThoseAsOfEachMessage() throws {
        var batch = MessageBatch(commands: [
            Self.send("1-0", from: 1, to: 2),
            Self.send("1-1", from: 1, to: 2),
            Self.send("1-2", from: 2, to: 1),  // 2 answers: its pointer moves to 3, its unread drops to 0
            Self.send("1-3", from: 1, to: 2),
        ])
        batch.recordExistingUsers([1, 2])
        var snapshot = Self.twoConversations()
        // User 2 had 4 unread elsewhere before the batch.
        snapshot.totals = [2: 4, 1: 0]
        let writes = batch.plan(snapshot)
        let outcomes = try batch.outcomes(inserted: Self.inserted(writes))
        let received = outcomes.compactMap { Self.event($0, "receiveMessage")?.data }
        #expect(received.map { $0["unreadCount"] } == [1, 2, 1, 1])
        #expect(received.map { $0["totalUnread"] } == [5, 6, 1, 5])
        #expect(received.map { $0["receiverId"] } == [2, 2, 1, 2])
    }

    @Test func unknownReceiversAreRefusedAndTheRestIsApplied() throws {
        var batch = MessageBatch(commands: [
            Self.send("1-0", from: 1, to: 99),
            Self.send("1-1", from: 1, to: 2),
            Self.send("1-2", from: 55, to: 2),  // an account deleted while its token lives
        ])
        #expect(batch.userIDsToCheck == [1, 2, 55, 99])
        batch.recordExistingUsers([1, 2])
        #expect(batch.conversationsToCreate.map(\.directKey) == ["1:2"])
        let writes = batch.plan(Self.twoConversations())
        #expect(writes.messages.count == 1)
        let outcomes = try batch.outcomes(inserted: Self.inserted(writes))
        #expect(Self.errorCode(outcomes[0]) == "user_not_found")
        #expect(outcomes[0].events.isEmpty)
        #expect(Self.result(outcomes[1])?["seq"] == 1)
        #expect(Self.errorCode(outcomes[2]) == "user_not_found")
    }

    @Test func idempotentInsertReusesTheStoredMessage() throws {
        var batch = MessageBatch(commands: [
            Self.send("1-0", from: 1, to: 2, key: "same"),
            Self.send("1-1", from: 1, to: 2, key: "fresh"),
            Self.send("1-2", from: 1, to: 2, key: "fresh"),  // a quick retry in the same batch
        ])
        batch.recordExistingUsers([1, 2])
        var snapshot = Self.twoConversations(lastSeq10: 3, pointer: 3)
        snapshot.pointers[MemberKey(conversationID: 10, userID: 2)] = 1
        snapshot.existing[IdempotencyKey(senderID: 1, clientMsgID: "same")] =
            (record: Self.stored(id: 77, conversation: 10, seq: 3, sender: 1, receiver: 2, key: "same"), conversationLastSeq: 3)
        let writes = batch.plan(snapshot)
        #expect(writes.messages.map(\.clientMsgID) == ["fresh"])
        #expect(writes.messages.map(\.seq) == [4])
        let outcomes = try batch.outcomes(inserted: Self.inserted(writes))
        #expect(Self.result(outcomes[0])?["id"] == 77)
        #expect(Self.result(outcomes[0])?["seq"] == 3)
        #expect(Self.event(outcomes[0], "receiveMessage")?.data["unreadCount"] == 2)
        #expect(Self.result(outcomes[1]) == Self.result(outcomes[2]))
        #expect(Self.result(outcomes[2])?["id"] == 1000)
        // Re-processing publishes again: at-least-once delivery of the one stored message.
        #expect(outcomes.allSatisfy { $0.events.count == 2 })
    }

    @Test func readMovesThePointerForwardOnly() throws {
        var batch = MessageBatch(commands: [
            Self.command("1-0", .read(messageID: 8), by: 2),
            Self.command("1-1", .read(messageID: 5), by: 2),
            Self.command("1-2", .read(messageID: 9), by: 2),
        ])
        var snapshot = Self.twoConversations(lastSeq10: 12, pointer: 2)
        snapshot.messages[8] = Self.stored(id: 8, conversation: 10, seq: 8, sender: 1, receiver: 2)
        snapshot.messages[5] = Self.stored(id: 5, conversation: 10, seq: 5, sender: 1, receiver: 2)
        snapshot.messages[9] = Self.stored(id: 9, conversation: 10, seq: 9, sender: 1, receiver: 2)
        #expect(batch.memberKeys(snapshot) == [MemberKey(conversationID: 10, userID: 2)])
        let writes = batch.plan(snapshot)
        #expect(writes.messages.isEmpty)
        #expect(writes.pointers.map(\.lastReadSeq) == [9])
        let outcomes = try batch.outcomes(inserted: [])
        #expect(Self.result(outcomes[0]) == ["count": 6, "lastReadSeq": 8])
        #expect(Self.result(outcomes[1]) == ["count": 0, "lastReadSeq": 8])
        #expect(Self.result(outcomes[2]) == ["count": 1, "lastReadSeq": 9])
        let confirmed = try #require(Self.event(outcomes[0], "messageReadConfirmed"))
        #expect(confirmed.userID == 2)
        #expect(confirmed.data["isRead"] == true)
        let bySender = try #require(Self.event(outcomes[0], "messageReadByReceiver"))
        #expect(bySender.userID == 1)
        #expect(bySender.data["readerId"] == 2)
        #expect(bySender.data["id"] == 8)
    }

    @Test func readRefusals() throws {
        var batch = MessageBatch(commands: [
            Self.command("1-0", .read(messageID: 404), by: 2),
            Self.command("1-1", .read(messageID: 8), by: 1),  // own message
            Self.command("1-2", .read(messageID: 8), by: 3),  // not a member
        ])
        var snapshot = Self.twoConversations(lastSeq10: 12)
        snapshot.messages[8] = Self.stored(id: 8, conversation: 10, seq: 8, sender: 1, receiver: 2)
        let writes = batch.plan(snapshot)
        #expect(writes.pointers.isEmpty)
        let outcomes = try batch.outcomes(inserted: [])
        #expect(outcomes.map { Self.errorCode($0) } == ["message_not_found", "not_a_recipient", "not_a_recipient"])
    }

    @Test func readAllCountsAndNotifiesTheSender() throws {
        var batch = MessageBatch(commands: [
            Self.send("1-0", from: 1, to: 2),
            Self.command("1-1", .readAll(senderID: 1), by: 2),
            Self.command("1-2", .readAll(senderID: 1), by: 2),
            Self.command("1-3", .readAll(senderID: 9), by: 2),
        ])
        batch.recordExistingUsers([1, 2])
        let writes = batch.plan(Self.twoConversations(lastSeq10: 5, pointer: 2))
        #expect(writes.pointers.map { "\($0.key.userID)=\($0.lastReadSeq)" } == ["1=6", "2=6"])
        let outcomes = try batch.outcomes(inserted: Self.inserted(writes))
        #expect(Self.result(outcomes[1]) == ["count": 4, "lastReadSeq": 6, "conversationId": 10])
        #expect(Self.event(outcomes[1], "allMessagesRead")?.data == ["senderId": 1, "count": 4, "conversationId": 10, "lastReadSeq": 6])
        #expect(Self.event(outcomes[1], "allMessagesRead")?.userID == 2)
        #expect(Self.event(outcomes[1], "messagesReadByReceiver")?.userID == 1)
        #expect(Self.event(outcomes[1], "messagesReadByReceiver")?.data == ["receiverId": 2, "count": 4, "conversationId": 10, "lastReadSeq": 6])
        #expect(Self.result(outcomes[2])?["count"] == 0)
        // An unknown sender is a 404, as for REST; a known one without a conversation reads nothing.
        #expect(Self.errorCode(outcomes[3]) == "user_not_found")
        #expect(outcomes[3].events.isEmpty)
    }

    @Test func readAllOfAKnownUserWithoutConversationReadsNothing() throws {
        var batch = MessageBatch(commands: [Self.command("1-0", .readAll(senderID: 9), by: 2)])
        batch.recordExistingUsers([2, 9])
        _ = batch.plan(Self.twoConversations())
        let outcomes = try batch.outcomes(inserted: [])
        #expect(Self.result(outcomes[0]) == ["count": 0, "lastReadSeq": 0, "conversationId": .null])
        #expect(outcomes[0].events.map(\.name) == ["allMessagesRead"])
    }

    @Test func readManyMovesEachConversationToItsNewestMessage() throws {
        var batch = MessageBatch(commands: [Self.command("1-0", .readMany([3, 4, 7]), by: 1)])
        var snapshot = Self.twoConversations(lastSeq10: 9, lastSeq20: 9, pointer: 1)
        snapshot.messages[3] = Self.stored(id: 3, conversation: 10, seq: 3, sender: 2, receiver: 1)
        snapshot.messages[4] = Self.stored(id: 4, conversation: 10, seq: 6, sender: 2, receiver: 1)
        snapshot.messages[7] = Self.stored(id: 7, conversation: 20, seq: 5, sender: 3, receiver: 1)
        let writes = batch.plan(snapshot)
        #expect(writes.pointers.map { "\($0.key.conversationID)=\($0.lastReadSeq)" } == ["10=6", "20=5"])
        let outcomes = try batch.outcomes(inserted: [])
        #expect(Self.result(outcomes[0])?["count"] == 9)
        #expect(Self.result(outcomes[0])?["lastReadSeq"] == 6)
        #expect(outcomes[0].events.map { "\($0.name)->\($0.userID)" } == ["messagesReadByReceiver->2", "messagesReadByReceiver->3"])
        #expect(outcomes[0].events[1].data == ["receiverId": 1, "count": 4, "conversationId": 20, "lastReadSeq": 5])
    }

    @Test func readManyIsAllOrNothing() throws {
        var batch = MessageBatch(commands: [
            Self.command("1-0", .readMany([3, 404, 405]), by: 1),  // unknown ids: 404
            Self.command("1-1", .readMany([3, 8]), by: 1),  // own message: 403
            Self.command("1-2", .readMany([3]), by: 3),  // not a member of conversation 10: 403
        ])
        var snapshot = Self.twoConversations(lastSeq10: 9, lastSeq20: 9, pointer: 1)
        snapshot.messages[3] = Self.stored(id: 3, conversation: 10, seq: 3, sender: 2, receiver: 1)
        snapshot.messages[8] = Self.stored(id: 8, conversation: 20, seq: 8, sender: 1, receiver: 3)
        let writes = batch.plan(snapshot)
        #expect(writes.pointers.isEmpty)
        let outcomes = try batch.outcomes(inserted: [])
        #expect(outcomes.map { Self.errorCode($0) } == ["message_not_found", "not_a_recipient", "not_a_recipient"])
        #expect(outcomes.allSatisfy { $0.events.isEmpty })
        guard case .failed(_, let message, let details)? = outcomes[0].reply?.outcome else { Issue.record("no failure"); return }
        #expect(message == "no messages with ids 404, 405")
        #expect(details["messageIds"] == [404, 405])
        guard case .failed(_, _, let ownDetails)? = outcomes[1].reply?.outcome else { Issue.record("no failure"); return }
        #expect(ownDetails["messageIds"] == [8])
    }

    @Test func commandsWithoutReplyAddressStillProduceEvents() throws {
        var batch = MessageBatch(commands: [BatchCommand(entryID: "1-0", envelope: CommandEnvelope(
            command: .send(SendMessage(receiverID: 2, content: "x", clientMsgID: "a")), userID: 1, reply: nil))])
        batch.recordExistingUsers([1, 2])
        let writes = batch.plan(Self.twoConversations())
        let outcomes = try batch.outcomes(inserted: Self.inserted(writes))
        #expect(outcomes[0].reply == nil)
        #expect(outcomes[0].events.count == 2)
    }

    @Test func aMissingInsertedRowIsAnError() {
        var batch = MessageBatch(commands: [Self.send("1-0", from: 1, to: 2)])
        batch.recordExistingUsers([1, 2])
        _ = batch.plan(Self.twoConversations())
        #expect(throws: MessageBatch.MissingInsert.self) { try batch.outcomes(inserted: []) }
    }

    @Test func ledgerTotalsFollowPointerAndSeqChanges() {
        var snapshot = BatchSnapshot()
        snapshot.conversations = ["1:2": (id: 10, lastSeq: 5)]
        snapshot.pointers = [MemberKey(conversationID: 10, userID: 1): 5, MemberKey(conversationID: 10, userID: 2): 1]
        snapshot.totals = [2: 10]
        var ledger = UnreadLedger(snapshot: snapshot, trackedUsers: [2])
        let member = MemberKey(conversationID: 10, userID: 2)
        #expect(ledger.unread(member) == 4)
        #expect(ledger.append(conversationID: 10, members: [1, 2]) == 6)
        #expect(ledger.total(2) == 11)
        #expect(ledger.advance(member, to: 3) == 2)
        #expect(ledger.total(2) == 9)
        #expect(ledger.advance(member, to: 2) == 0)
        #expect(ledger.pointer(member) == 3)
        #expect(ledger.advance(MemberKey(conversationID: 10, userID: 9), to: 6) == 0)
        #expect(ledger.movedPointers().map(\.key) == [member])
    }

    // MARK: Rooms (issue 13)

    private static func roomSend(_ entry: String, from sender: Int64, room: Int64, key: String? = nil) -> BatchCommand {
        BatchCommand(entryID: entry, envelope: CommandEnvelope(
            command: .send(SendMessage(target: .room(room), content: "to the room", clientMsgID: key ?? "k-\(entry)")), userID: sender, reply: gateway))
    }

    /// Room 50 (public, last seq 4) with members 1 (pointer 4) and 2 (pointer 1); room 60 private, member 1.
    private static func rooms() -> BatchSnapshot {
        var snapshot = BatchSnapshot()
        snapshot.rooms = [50: (lastSeq: 4, isPrivate: false), 60: (lastSeq: 0, isPrivate: true)]
        snapshot.pointers = [MemberKey(conversationID: 50, userID: 1): 4, MemberKey(conversationID: 50, userID: 2): 1,
                             MemberKey(conversationID: 60, userID: 1): 0]
        return snapshot
    }

    @Test func roomSendsTakeTheRoomsNextSeqsAndGoOnceToTheRoomsChannel() throws {
        var batch = MessageBatch(commands: [
            Self.roomSend("1-0", from: 2, room: 50), Self.roomSend("1-1", from: 1, room: 50), Self.roomSend("1-2", from: 2, room: 50, key: "k-1-0"),
        ])
        #expect(batch.roomIDs == [50])
        #expect(batch.memberKeys(Self.rooms()) == [MemberKey(conversationID: 50, userID: 1), MemberKey(conversationID: 50, userID: 2)])
        let writes = batch.plan(Self.rooms())
        #expect(writes.messages.map(\.seq) == [5, 6], "the retry of 1-0 in the same batch is one row")
        #expect(writes.messages.allSatisfy { $0.receiverID == nil && $0.conversationID == 50 })
        // The senders' pointers move to their own messages.
        #expect(writes.pointers.map { "\($0.key.userID)=\($0.lastReadSeq)" }.sorted() == ["1=6", "2=5"])
        let outcomes = try batch.outcomes(inserted: Self.inserted(writes))
        #expect(outcomes.map { Self.result($0)?["seq"] } == [5, 6, 5])
        #expect(outcomes[0].events.map(\.name) == ["messageSent"] && outcomes[0].events.first?.userID == 2)
        #expect(outcomes[0].roomEvents.map { "\($0.roomID) \($0.event.name) except \($0.except ?? 0)" } == ["50 receiveMessage except 2"])
        #expect(Self.result(outcomes[0])?["roomId"] == 50 && Self.result(outcomes[0])?["receiverId"] == .null)
        // Written once, spliced into the reply, `messageSent` and the room's event.
        for event in outcomes[0].roomEvents {
            #expect(event.encodedData != nil)
            #expect(event.payload() == RoomEvent(roomID: event.roomID, event: event.event, data: event.data, except: event.except).payload())
        }
        #expect(outcomes[0].reply?.payload() == outcomes[0].reply?.json.serialized())
    }

    @Test func onlyMembersOfALiveRoomSendAndAPrivateRoomDoesNotExistForOthers() throws {
        var batch = MessageBatch(commands: [
            Self.roomSend("1-0", from: 3, room: 50), Self.roomSend("1-1", from: 3, room: 60), Self.roomSend("1-2", from: 1, room: 70),
        ])
        let writes = batch.plan(Self.rooms())
        #expect(writes.messages.isEmpty)
        let outcomes = try batch.outcomes(inserted: [])
        #expect(outcomes.map(Self.errorCode) == ["not_a_member", "room_not_found", "room_not_found"])
        #expect(outcomes.allSatisfy { $0.events.isEmpty && $0.roomEvents.isEmpty })
    }

    @Test func deliveriesAndReadsInARoomMovePointersAndTellTheOtherMembers() throws {
        var snapshot = Self.rooms()
        snapshot.messages[900] = ChatMessageRecord(id: 900, conversationID: 50, seq: 3, senderID: 1, receiverID: nil, clientMsgID: "m",
                                                   type: .text, content: "x", attachmentURL: nil, createdAtMilliseconds: 1, isRead: false)
        var batch = MessageBatch(commands: [
            Self.command("1-0", .delivered(roomID: 50, seq: 4), by: 2), Self.command("1-1", .read(messageID: 900), by: 2),
            Self.command("1-2", .delivered(roomID: 50, seq: 2), by: 9),
        ])
        #expect(batch.memberKeys(snapshot).contains(MemberKey(conversationID: 50, userID: 9)))
        let writes = batch.plan(snapshot)
        #expect(writes.deliveries.map { "\($0.key.userID)=\($0.seq)" } == ["2=4"])
        #expect(writes.pointers.map { "\($0.key.userID)=\($0.lastReadSeq)" } == ["2=3"])
        let outcomes = try batch.outcomes(inserted: [])
        #expect(outcomes[0].roomEvents.map(\.event.name) == ["memberDelivered"] && outcomes[0].roomEvents.first?.except == 2)
        #expect(outcomes[1].roomEvents.map(\.event.name) == ["memberRead"] && outcomes[1].roomEvents.first?.data["lastReadSeq"] == 3)
        #expect(outcomes[1].events.map(\.name) == ["messageReadConfirmed"], "no per-sender receipt in a room")
        #expect(Self.errorCode(outcomes[2]) == "not_a_member")
    }
}
