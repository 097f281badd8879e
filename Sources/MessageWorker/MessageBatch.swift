import Shared

/// A decoded command and the stream entry it came from.
struct BatchCommand: Sendable, Equatable {
    let entryID: String
    let envelope: CommandEnvelope
    /// The shard stream the entry was read from.
    var shard = 0

    /// A room operation (applied by `RoomStore`, not in a message batch).
    var isRoomCommand: Bool {
        if case .room = envelope.command { return true }
        return false
    }

    /// An edit, a delete or a reaction (applied by `MessageChangeStore`, not in a message batch; issue 14).
    var isMessageChange: Bool {
        switch envelope.command {
        case .edit, .delete, .react: true
        default: false
        }
    }
    /// Set when the sender's message limit refused this send. It is answered with this error and
    /// never stored, unless it is a retry of a message already stored (then the stored message is
    /// the answer, as for any retry).
    var rateLimited: APIError? = nil
}

/// One `conversation_members` row.
struct MemberKey: Hashable, Comparable, Sendable {
    let conversationID: Int64
    let userID: Int64

    static func < (lhs: MemberKey, rhs: MemberKey) -> Bool {
        (lhs.conversationID, lhs.userID) < (rhs.conversationID, rhs.userID)
    }
}

/// The idempotency key of a send: `unique(sender_id, client_msg_id)`.
struct IdempotencyKey: Hashable, Sendable {
    let senderID: Int64
    let clientMsgID: String
}

/// A direct conversation a batch sends in, and who creates it if it does not exist yet.
struct ConversationToCreate: Sendable, Equatable {
    let directKey: String
    let createdBy: Int64
    let members: [Int64]
}

/// What the batch's transaction read (under row locks) before writing.
struct BatchSnapshot: Sendable {
    /// Conversations by direct key, locked: `last_seq` cannot move under us.
    var conversations: [String: (id: Int64, lastSeq: Int64)] = [:]
    /// Messages named by read commands, by id.
    var messages: [Int64: ChatMessageRecord] = [:]
    /// Messages already stored under a send's idempotency key, with their conversation's `last_seq`.
    var existing: [IdempotencyKey: (record: ChatMessageRecord, conversationLastSeq: Int64)] = [:]
    /// `last_read_seq` of the memberships `MessageBatch.memberKeys` named (absent: not a member).
    var pointers: [MemberKey: Int64] = [:]
    /// Total unread of the users `MessageBatch.totalUserIDs` named, before the batch.
    var totals: [Int64: Int64] = [:]
    /// Rooms sent in (issue 13), locked, when not gone: their `last_seq` and privacy.
    var rooms: [Int64: (lastSeq: Int64, isPrivate: Bool)] = [:]
}

/// A message row to insert.
struct NewMessageRow: Sendable, Equatable {
    let conversationID: Int64
    let seq: Int64
    let senderID: Int64
    /// The receiver of a direct message (nil in a room).
    let receiverID: Int64?
    let clientMsgID: String
    let type: MessageType
    let content: String
    let attachmentURL: String?
    var attachmentName: String? = nil
    var attachmentSize: Int64? = nil
    var mimeType: String? = nil
}

extension NewMessageRow {
    /// The row of `message` at `seq` of `conversationID`.
    init(conversationID: Int64, seq: Int64, senderID: Int64, receiverID: Int64?, message: SendMessage) {
        self.init(conversationID: conversationID, seq: seq, senderID: senderID, receiverID: receiverID, clientMsgID: message.clientMsgID,
                  type: message.type, content: message.content, attachmentURL: message.attachmentURL, attachmentName: message.attachmentName,
                  attachmentSize: message.attachmentSize, mimeType: message.mimeType)
    }
}

/// What `INSERT ... RETURNING` gave back for a new row.
struct InsertedMessage: Sendable, Equatable {
    let id: Int64
    let conversationID: Int64
    let seq: Int64
    let createdAtMilliseconds: Int64
}

/// The writes a batch needs after planning.
struct BatchWrites: Sendable, Equatable {
    /// New rows, seqs already assigned (gap-free per conversation, in stream order).
    var messages: [NewMessageRow] = []
    /// Final read pointers of the memberships that moved, sorted by key (lock order).
    var pointers: [(key: MemberKey, lastReadSeq: Int64)] = []
    /// Delivery pointers to move forward (room members' devices confirmed receipt), sorted by key.
    var deliveries: [(key: MemberKey, seq: Int64)] = []

    static func == (lhs: BatchWrites, rhs: BatchWrites) -> Bool {
        lhs.deliveries.elementsEqual(rhs.deliveries) { $0.key == $1.key && $0.seq == $1.seq }
            && lhs.messages == rhs.messages && lhs.pointers.elementsEqual(rhs.pointers) { $0.key == $1.key && $0.lastReadSeq == $1.lastReadSeq }
    }
}

/// What to tell whom about one command once the batch committed.
struct CommandOutcome: Sendable, Equatable {
    let entryID: String
    /// The answer for the originating socket or request (nil: the command had no reply address).
    var reply: ChatReply?
    /// Events for users' devices.
    var events: [ChatEvent]
    /// Events for rooms' members (one publish each, on the room's channel), after `events`.
    var roomEvents: [RoomEvent] = []
    /// Set when the entry is to be moved to the dead-letter stream.
    var deadLetterReason: String?
}

/// The pure core of a batch: given the commands and what the database holds, decides every seq,
/// pointer move, unread count, reply and event. The I/O shell (`BatchStore`) runs its queries in
/// this order: `userIDsToCheck` → `recordExistingUsers` → conversations (`conversationsToCreate`,
/// `conversationKeys`), `messageIDs`, `idempotencyKeys` → `memberKeys` → `totalUserIDs` → `plan` →
/// insert (and the conversations' heads) → pointers → commit → `outcomes`.
struct MessageBatch: Sendable {
    let commands: [BatchCommand]

    private enum MessageReference: Sendable {
        case stored(ChatMessageRecord)
        case new(Int)
    }

    private enum Planned: Sendable {
        case failed(APIError)
        case send(MessageReference, receiverID: Int64, unreadCount: Int64, totalUnread: Int64, isRead: Bool)
        /// A room message (issue 13): to the sender's devices and every other member's.
        case roomSend(MessageReference, roomID: Int64)
        case done(result: JSONValue, events: [ChatEvent], roomEvents: [RoomEvent] = [])
    }

    private var planned: [Planned?]
    private var writes = BatchWrites()

    init(commands: [BatchCommand]) {
        self.commands = commands
        planned = Array(repeating: nil, count: commands.count)
    }

    /// Commands still to be applied (not refused by an earlier step).
    private var active: some Sequence<(offset: Int, element: BatchCommand)> {
        commands.enumerated().lazy.filter { self.planned[$0.offset] == nil }
    }

    private var activeSends: [(userID: Int64, message: SendMessage)] {
        active.compactMap { entry in
            if case .send(let message) = entry.element.envelope.command { return (entry.element.envelope.userID, message) }
            return nil
        }
    }

    /// Admitted sends of direct messages, with their receiver.
    private var directSends: [(userID: Int64, receiverID: Int64)] {
        admittedSends.compactMap { send in send.message.receiverID.map { (send.userID, $0) } }
    }

    /// Active sends the rate limit admitted: only these may create conversations or rows.
    private var admittedSends: [(userID: Int64, message: SendMessage)] {
        active.compactMap { entry in
            guard entry.element.rateLimited == nil, case .send(let message) = entry.element.envelope.command else { return nil }
            return (entry.element.envelope.userID, message)
        }
    }

    // MARK: Before the transaction

    /// Senders and receivers of sends, and the senders `readAll` names, to check they exist (one
    /// query for the batch).
    var userIDsToCheck: [Int64] {
        var ids = Set<Int64>()
        for (userID, message) in admittedSends {
            ids.insert(userID)
            if let receiver = message.receiverID { ids.insert(receiver) }
        }
        for (_, command) in active {
            if case .readAll(let senderID) = command.envelope.command { ids.insert(senderID) }
        }
        return ids.sorted()
    }

    /// Refuses sends whose receiver (or sender: an account deleted while its token lives) is not in
    /// `existing` with `user_not_found`.
    mutating func recordExistingUsers(_ existing: Set<Int64>) {
        for (index, command) in commands.enumerated() where planned[index] == nil && command.rateLimited == nil {
            if case .readAll(let senderID) = command.envelope.command, !existing.contains(senderID) {
                planned[index] = .failed(APIError(.userNotFound, message: "no user with id \(senderID)"))
                continue
            }
            guard case .send(let message) = command.envelope.command else { continue }
            if let receiver = message.receiverID, !existing.contains(receiver) {
                planned[index] = .failed(ChatErrors.userNotFound)
            } else if !existing.contains(command.envelope.userID) {
                planned[index] = .failed(APIError(.userNotFound, message: "your account does not exist"))
            }
        }
    }

    // MARK: Reads inside the transaction

    /// Direct conversations the sends need, sorted by key (the order rows are created and locked in).
    var conversationsToCreate: [ConversationToCreate] {
        var seen: [String: ConversationToCreate] = [:]
        for (userID, receiver) in directSends {
            let key = DirectConversation.key(userID, receiver)
            if seen[key] == nil {
                seen[key] = ConversationToCreate(directKey: key, createdBy: userID, members: [min(userID, receiver), max(userID, receiver)])
            }
        }
        return seen.keys.sorted().compactMap { seen[$0] }
    }

    /// Direct keys of every conversation the batch writes or reads through (sends and readAll), sorted.
    var conversationKeys: [String] {
        var keys = Set(conversationsToCreate.map(\.directKey))
        for (_, command) in active {
            if case .readAll(let senderID) = command.envelope.command, senderID != command.envelope.userID {
                keys.insert(DirectConversation.key(command.envelope.userID, senderID))
            }
        }
        return keys.sorted()
    }

    /// Rooms the batch sends in (issue 13), sorted: locked like direct conversations.
    var roomIDs: [Int64] {
        Set(activeSends.compactMap(\.message.roomID)).sorted()
    }

    /// Messages named by read commands.
    var messageIDs: [Int64] {
        var ids = Set<Int64>()
        for (_, command) in active {
            switch command.envelope.command {
            case .read(let id): ids.insert(id)
            case .readMany(let list): ids.formUnion(list)
            default: break
            }
        }
        return ids.sorted()
    }

    /// Idempotency keys of the sends.
    var idempotencyKeys: [IdempotencyKey] {
        var seen = Set<IdempotencyKey>()
        var keys: [IdempotencyKey] = []
        for (userID, message) in activeSends {
            let key = IdempotencyKey(senderID: userID, clientMsgID: message.clientMsgID)
            if seen.insert(key).inserted { keys.append(key) }
        }
        return keys
    }

    /// Memberships whose pointers the batch reads or moves, sorted (the order rows are locked in).
    func memberKeys(_ snapshot: BatchSnapshot) -> [MemberKey] {
        var keys = Set<MemberKey>()
        for (_, command) in active {
            let userID = command.envelope.userID
            switch command.envelope.command {
            case .send(let message):
                if let stored = snapshot.existing[IdempotencyKey(senderID: userID, clientMsgID: message.clientMsgID)] {
                    keys.insert(MemberKey(conversationID: stored.record.conversationID, userID: stored.record.senderID))
                    if let receiver = stored.record.receiverID { keys.insert(MemberKey(conversationID: stored.record.conversationID, userID: receiver)) }
                }
                switch message.target {
                case .user(let receiver):
                    if let conversation = snapshot.conversations[DirectConversation.key(userID, receiver)] {
                        keys.insert(MemberKey(conversationID: conversation.id, userID: userID))
                        keys.insert(MemberKey(conversationID: conversation.id, userID: receiver))
                    }
                case .room(let room):
                    keys.insert(MemberKey(conversationID: room, userID: userID))
                }
            case .readAll(let senderID):
                if let conversation = snapshot.conversations[DirectConversation.key(userID, senderID)] {
                    keys.insert(MemberKey(conversationID: conversation.id, userID: userID))
                }
            case .read(let id):
                if let record = snapshot.messages[id] { keys.insert(MemberKey(conversationID: record.conversationID, userID: userID)) }
            case .readMany(let ids):
                for id in ids {
                    if let record = snapshot.messages[id] { keys.insert(MemberKey(conversationID: record.conversationID, userID: userID)) }
                }
            case .delivered(let room, _):
                keys.insert(MemberKey(conversationID: room, userID: userID))
            case .room, .edit, .delete, .react:
                break  // applied by RoomStore and MessageChangeStore, never in a message batch
            }
        }
        return keys.sorted()
    }

    /// Users whose total unread count `receiveMessage` carries.
    func totalUserIDs(_ snapshot: BatchSnapshot) -> [Int64] {
        var users = Set<Int64>()
        for (userID, message) in activeSends {
            if let stored = snapshot.existing[IdempotencyKey(senderID: userID, clientMsgID: message.clientMsgID)], let receiver = stored.record.receiverID {
                users.insert(receiver)
            } else if let receiver = message.receiverID {
                users.insert(receiver)
            }
        }
        return users.sorted()
    }

    // MARK: Planning

    /// Applies the commands in stream order to the snapshot: assigns seqs, moves pointers (never
    /// backwards), keeps unread counts, and returns the rows to write.
    mutating func plan(_ snapshot: BatchSnapshot) -> BatchWrites {
        var planner = Planner(snapshot: snapshot, ledger: UnreadLedger(snapshot: snapshot, trackedUsers: Set(totalUserIDs(snapshot))))
        for (index, command) in commands.enumerated() where planned[index] == nil {
            planned[index] = planner.plan(command)
        }
        writes = BatchWrites(messages: planner.messages, pointers: planner.ledger.movedPointers(),
                             deliveries: planner.deliveries.keys.sorted().map { (key: $0, seq: planner.deliveries[$0] ?? 0) })
        return writes
    }

    /// Plans one command at a time, in stream order, against the snapshot and the counts the
    /// commands before it left in the ledger: one planner per command kind.
    private struct Planner {
        let snapshot: BatchSnapshot
        var ledger: UnreadLedger
        /// New rows, in stream order.
        var messages: [NewMessageRow] = []
        /// The row each idempotency key got in this batch.
        var newByKey: [IdempotencyKey: Int] = [:]
        /// Delivery pointers to move (room members' devices confirmed receipt).
        var deliveries: [MemberKey: Int64] = [:]

        mutating func plan(_ command: BatchCommand) -> Planned {
            let userID = command.envelope.userID
            switch command.envelope.command {
            case .send(let message): return send(message, of: command)
            case .read(let messageID): return read(messageID, by: userID)
            case .readAll(let senderID): return readAll(from: senderID, by: userID)
            case .readMany(let ids): return readMany(ids, by: userID)
            case .room, .edit, .delete, .react:  // RoomStore's and MessageChangeStore's, never here
                return .failed(ChatErrors.unsupportedCommand(command.envelope.command.typeName))
            case .delivered(let room, let seq): return delivered(room, upTo: seq, by: userID)
            }
        }

        /// `messageDelivered` in a room: the member's delivery pointer moves forward (never past
        /// the room's last message, never back: the statement clamps); the room's other members
        /// hear `memberDelivered` (coalesced by the consumer).
        mutating func delivered(_ room: Int64, upTo seq: Int64, by userID: Int64) -> Planned {
            let member = MemberKey(conversationID: room, userID: userID)
            guard ledger.isMember(member) else { return .failed(APIError(.notAMember)) }
            deliveries[member] = max(deliveries[member] ?? 0, seq)
            let data: JSONValue = ["roomId": .int(room), "userId": .int(userID), "lastDeliveredSeq": .int(seq)]
            return .done(result: ["roomId": .int(room), "seq": .int(seq)], events: [],
                         roomEvents: [RoomEvent(roomID: room, event: .memberDelivered, data: data, except: userID)])
        }

        /// A send: the stored message again for a known key, else a new row with the next seq.
        mutating func send(_ message: SendMessage, of command: BatchCommand) -> Planned {
            guard case .user(let receiverID) = message.target else { return roomSend(message, of: command) }
            let userID = command.envelope.userID
            let key = IdempotencyKey(senderID: userID, clientMsgID: message.clientMsgID)
            if let stored = snapshot.existing[key] {
                // Stored by an earlier attempt or batch: the same message again, no new seq.
                let record = stored.record
                let receiver = record.receiverID ?? receiverID
                let member = MemberKey(conversationID: record.conversationID, userID: receiver)
                return sent(.stored(record), to: member, isRead: ledger.pointer(member) >= record.seq)
            }
            if let refusal = command.rateLimited { return .failed(refusal) }
            if let earlier = newByKey[key] {
                // The same key twice in one batch (a client retry): one row.
                let row = messages[earlier]
                let member = MemberKey(conversationID: row.conversationID, userID: row.receiverID ?? receiverID)
                return sent(.new(earlier), to: member, isRead: ledger.pointer(member) >= row.seq)
            }
            guard let conversation = snapshot.conversations[DirectConversation.key(userID, receiverID)] else {
                // The conversation was created or found earlier in the transaction; absent means a bug.
                return .failed(ChatErrors.processingFailed)
            }
            let seq = ledger.append(conversationID: conversation.id, members: [userID, receiverID])
            ledger.advance(MemberKey(conversationID: conversation.id, userID: userID), to: seq)
            messages.append(NewMessageRow(conversationID: conversation.id, seq: seq, senderID: userID, receiverID: receiverID, message: message))
            newByKey[key] = messages.count - 1
            return sent(.new(messages.count - 1), to: MemberKey(conversationID: conversation.id, userID: receiverID), isRead: false)
        }

        /// A room message (issue 13): only a member of a room that is not gone may send; the
        /// stored message again for a known key, else a new row with the room's next seq.
        mutating func roomSend(_ message: SendMessage, of command: BatchCommand) -> Planned {
            guard let roomID = message.roomID else { return .failed(ChatErrors.processingFailed) }
            let userID = command.envelope.userID
            let key = IdempotencyKey(senderID: userID, clientMsgID: message.clientMsgID)
            if let stored = snapshot.existing[key] { return .roomSend(.stored(stored.record), roomID: stored.record.conversationID) }
            if let refusal = command.rateLimited { return .failed(refusal) }
            if let earlier = newByKey[key] { return .roomSend(.new(earlier), roomID: messages[earlier].conversationID) }
            guard let room = snapshot.rooms[roomID] else { return .failed(APIError(.roomNotFound)) }
            let member = MemberKey(conversationID: roomID, userID: userID)
            guard ledger.isMember(member) else { return .failed(APIError(room.isPrivate ? .roomNotFound : .notAMember)) }
            let seq = ledger.append(conversationID: roomID, members: [userID])
            ledger.advance(member, to: seq)
            messages.append(NewMessageRow(conversationID: roomID, seq: seq, senderID: userID, receiverID: nil, message: message))
            newByKey[key] = messages.count - 1
            return .roomSend(.new(messages.count - 1), roomID: roomID)
        }

        /// `memberRead` for a room's other members: `member` read up to `lastReadSeq`.
        static func memberRead(_ member: MemberKey, lastReadSeq: Int64) -> RoomEvent {
            RoomEvent(roomID: member.conversationID, event: .memberRead,
                      data: ["roomId": .int(member.conversationID), "userId": .int(member.userID), "lastReadSeq": .int(lastReadSeq)],
                      except: member.userID)
        }

        /// A send answered with `reference`, carrying the receiver's counts as they are now.
        private func sent(_ reference: MessageReference, to receiver: MemberKey, isRead: Bool) -> Planned {
            .send(reference, receiverID: receiver.userID, unreadCount: ledger.unread(receiver),
                  totalUnread: ledger.total(receiver.userID), isRead: isRead)
        }

        /// `messageRead`: the reader's pointer moves up to one message it received.
        mutating func read(_ messageID: Int64, by userID: Int64) -> Planned {
            guard let record = snapshot.messages[messageID] else { return .failed(ChatErrors.messageNotFound) }
            let member = MemberKey(conversationID: record.conversationID, userID: userID)
            guard record.senderID != userID, ledger.isMember(member) else { return .failed(ChatErrors.notARecipient) }
            let count = ledger.advance(member, to: record.seq)
            var read = record
            read.isRead = true
            var bySender = read.json
            bySender["readerId"] = .int(userID)
            let result: JSONValue = ["count": .int(count), "lastReadSeq": .int(ledger.pointer(member))]
            let confirmed = ChatEvent(userID: userID, event: .messageReadConfirmed, data: .object(read.json))
            if record.receiverID == nil {
                // A room: the other members hear who read how far (coalesced), not the sender alone.
                return .done(result: result, events: [confirmed], roomEvents: [Self.memberRead(member, lastReadSeq: ledger.pointer(member))])
            }
            return .done(result: result, events: [
                confirmed, ChatEvent(userID: record.senderID, event: .messageReadByReceiver, data: .object(bySender)),
            ])
        }

        /// `markAllAsRead`: the reader's pointer in the conversation with `senderID` moves to its end.
        mutating func readAll(from senderID: Int64, by userID: Int64) -> Planned {
            guard let conversation = snapshot.conversations[DirectConversation.key(userID, senderID)],
                  senderID != userID, ledger.isMember(MemberKey(conversationID: conversation.id, userID: userID)) else {
                return .done(result: ReadProgress.none.readAllResult, events: [
                    ChatEvent(userID: userID, event: .allMessagesRead, data: ReadProgress.none.allMessagesRead(senderID: senderID)),
                ])
            }
            let member = MemberKey(conversationID: conversation.id, userID: userID)
            let count = ledger.advance(member, to: ledger.lastSeq(conversation.id))
            let progress = ReadProgress(conversationID: conversation.id, count: count, lastReadSeq: ledger.pointer(member))
            return .done(result: progress.readAllResult, events: [
                ChatEvent(userID: userID, event: .allMessagesRead, data: progress.allMessagesRead(senderID: senderID)),
                ChatEvent(userID: senderID, event: .messagesReadByReceiver, data: progress.messagesReadByReceiver(receiverID: userID)),
            ])
        }

        /// Mark-as-read of several messages: all or nothing, then each conversation's pointer moves
        /// to its newest message among them.
        mutating func readMany(_ ids: [Int64], by userID: Int64) -> Planned {
            if let refusal = readManyRefusal(ids, by: userID) { return .failed(refusal) }
            // Per conversation: the newest message, and who sent them.
            var newest: [Int64: Int64] = [:]
            var senders: [Int64: Set<Int64>] = [:]
            var rooms = Set<Int64>()
            for id in ids {
                guard let record = snapshot.messages[id] else { continue }
                newest[record.conversationID] = max(newest[record.conversationID] ?? 0, record.seq)
                senders[record.conversationID, default: []].insert(record.senderID)
                if record.receiverID == nil { rooms.insert(record.conversationID) }
            }
            var total: Int64 = 0
            var highest: Int64 = 0
            var perConversation: [JSONValue] = []
            var events: [ChatEvent] = []
            var roomEvents: [RoomEvent] = []
            for conversationID in newest.keys.sorted() {
                let member = MemberKey(conversationID: conversationID, userID: userID)
                let count = ledger.advance(member, to: newest[conversationID] ?? 0)
                let progress = ReadProgress(conversationID: conversationID, count: count, lastReadSeq: ledger.pointer(member))
                total = total.addingSaturated(count)
                highest = max(highest, progress.lastReadSeq)
                perConversation.append(progress.conversationEntry)
                if rooms.contains(conversationID) {
                    roomEvents.append(Self.memberRead(member, lastReadSeq: progress.lastReadSeq))
                    continue
                }
                for sender in (senders[conversationID] ?? []).sorted() {
                    events.append(ChatEvent(userID: sender, event: .messagesReadByReceiver, data: progress.messagesReadByReceiver(receiverID: userID)))
                }
            }
            return .done(result: ["count": .int(total), "lastReadSeq": .int(highest), "conversations": .array(perConversation)],
                         events: events, roomEvents: roomEvents)
        }

        /// Why a mark-as-read of `ids` is refused, as `read` refuses one message: 404 for ids that
        /// name no message, else 403 for one the reader did not receive.
        private func readManyRefusal(_ ids: [Int64], by userID: Int64) -> APIError? {
            let missing = ids.filter { snapshot.messages[$0] == nil }
            if !missing.isEmpty {
                var error = ChatErrors.messageNotFound
                error.message = missing.count == 1 ? "no message with id \(missing[0])" : "no messages with ids \(missing.prefix(20).map(String.init).joined(separator: ", "))"
                error.details["messageIds"] = .array(missing.prefix(100).map { .int($0) })
                return error
            }
            let foreign = ids.filter { id in
                guard let record = snapshot.messages[id] else { return true }
                return record.senderID == userID || !ledger.isMember(MemberKey(conversationID: record.conversationID, userID: userID))
            }
            guard !foreign.isEmpty else { return nil }
            var error = ChatErrors.notARecipient
            error.details["messageIds"] = .array(foreign.prefix(100).map { .int($0) })
            return error
        }
    }

    // MARK: After the insert

    /// Why outcomes cannot be built: the insert did not return a planned row.
    struct MissingInsert: Error, CustomStringConvertible {
        let conversationID: Int64
        let seq: Int64
        var description: String { "INSERT returned no row for conversation \(conversationID) seq \(seq)" }
    }

    private struct Position: Hashable {
        let conversationID: Int64
        let seq: Int64
    }

    /// The message a send answers with: stored earlier, or inserted by this batch.
    private func record(_ reference: MessageReference, byPosition: [Position: InsertedMessage]) throws(MissingInsert) -> ChatMessageRecord {
        switch reference {
        case .stored(let stored):
            return stored
        case .new(let position):
            let row = writes.messages[position]
            guard let stored = byPosition[Position(conversationID: row.conversationID, seq: row.seq)] else {
                throw MissingInsert(conversationID: row.conversationID, seq: row.seq)
            }
            return ChatMessageRecord(
                id: stored.id, conversationID: row.conversationID, seq: row.seq, senderID: row.senderID, receiverID: row.receiverID,
                clientMsgID: row.clientMsgID, type: row.type, content: row.content, attachmentURL: row.attachmentURL,
                attachmentName: row.attachmentName, attachmentSize: row.attachmentSize, mimeType: row.mimeType,
                createdAtMilliseconds: stored.createdAtMilliseconds, isRead: false)
        }
    }

    /// Replies and events for every command, in stream order.
    func outcomes(inserted: [InsertedMessage]) throws(MissingInsert) -> [CommandOutcome] {
        var byPosition: [Position: InsertedMessage] = [:]
        for message in inserted { byPosition[Position(conversationID: message.conversationID, seq: message.seq)] = message }

        var outcomes: [CommandOutcome] = []
        outcomes.reserveCapacity(commands.count)
        for (index, command) in commands.enumerated() {
            let reply = command.envelope.reply
            switch planned[index] {
            case .failed(let error)?:
                outcomes.append(CommandOutcome(entryID: command.entryID, reply: reply.map { ChatReply(reply: $0, error: error) }, events: []))
            case .done(let result, let events, let roomEvents)?:
                outcomes.append(CommandOutcome(entryID: command.entryID, reply: reply.map { ChatReply(reply: $0, outcome: .ok(result)) },
                                               events: events, roomEvents: roomEvents))
            // A stored message goes out three times (the reply, `messageSent`, `receiveMessage`):
            // it is written once and spliced into each payload.
            case .roomSend(let reference, let roomID)?:
                let message = try record(reference, byPosition: byPosition).json
                let written = JSONValue.object(message).serialized()
                let sender = command.envelope.userID
                outcomes.append(CommandOutcome(
                    entryID: command.entryID, reply: reply.map { Self.okReply($0, message, written) },
                    events: [ChatEvent(userID: sender, event: .messageSent, data: .object(message), encodedData: written)],
                    roomEvents: [RoomEvent(roomID: roomID, event: .receiveMessage, data: .object(message), except: sender, encodedData: written)]))
            case .send(let reference, let receiverID, let unreadCount, let totalUnread, let isRead)?:
                var record = try record(reference, byPosition: byPosition)
                record.isRead = isRead
                let message = record.json
                let written = JSONValue.object(message).serialized()
                var received = message
                received["unreadCount"] = .int(unreadCount)
                received["totalUnread"] = .int(totalUnread)
                let receivedWritten = EncodedJSON.appending(["unreadCount": unreadCount, "totalUnread": totalUnread], to: written)
                outcomes.append(CommandOutcome(
                    entryID: command.entryID, reply: reply.map { Self.okReply($0, message, written) },
                    events: [
                        ChatEvent(userID: record.senderID, event: .messageSent, data: .object(message), encodedData: written),
                        ChatEvent(userID: receiverID, event: .receiveMessage, data: .object(received), encodedData: receivedWritten),
                    ]))
            case nil:
                // Not planned: `plan` was not called (a batch refused entirely before the transaction).
                outcomes.append(CommandOutcome(entryID: command.entryID, reply: nil, events: []))
            }
        }
        return outcomes
    }

    /// The reply carrying a stored message, with the message's bytes written once.
    private static func okReply(_ address: ReplyAddress, _ message: JSONObject, _ written: [UInt8]) -> ChatReply {
        var reply = ChatReply(reply: address, outcome: .ok(.object(message)))
        reply.encodedResult = written
        return reply
    }
}

/// Read pointers, conversation heads and total unread counts as a batch changes them, so every
/// event carries the counts as of its own message.
struct UnreadLedger: Sendable {
    private var lastSeqs: [Int64: Int64] = [:]
    private var pointers: [MemberKey: ReadPointer] = [:]
    private var moved: Set<MemberKey> = []
    private var totals: [Int64: Int64] = [:]
    private let tracked: Set<Int64>

    init(snapshot: BatchSnapshot, trackedUsers: Set<Int64>) {
        for stored in snapshot.existing.values { lastSeqs[stored.record.conversationID] = stored.conversationLastSeq }
        // The locked rows win over values read without a lock.
        for conversation in snapshot.conversations.values { lastSeqs[conversation.id] = conversation.lastSeq }
        for (room, state) in snapshot.rooms { lastSeqs[room] = state.lastSeq }
        for (key, seq) in snapshot.pointers { pointers[key] = ReadPointer(lastReadSeq: seq) }
        tracked = trackedUsers
        for user in trackedUsers { totals[user] = snapshot.totals[user] ?? 0 }
    }

    /// The conversation's newest seq.
    func lastSeq(_ conversationID: Int64) -> Int64 { lastSeqs[conversationID] ?? 0 }

    /// Whether the membership exists.
    func isMember(_ key: MemberKey) -> Bool { pointers[key] != nil }

    /// The member's read pointer (0 when not a member).
    func pointer(_ key: MemberKey) -> Int64 { pointers[key]?.lastReadSeq ?? 0 }

    /// Unread messages of the member in that conversation.
    func unread(_ key: MemberKey) -> Int64 { Unread.inConversation(lastSeq: lastSeq(key.conversationID), lastReadSeq: pointer(key)) }

    /// The user's unread messages over all conversations (tracked users only; 0 otherwise).
    func total(_ userID: Int64) -> Int64 { totals[userID] ?? 0 }

    /// Takes the next seq of a conversation; every member has one more unread message.
    mutating func append(conversationID: Int64, members: [Int64]) -> Int64 {
        // Saturating: `last_seq` is read from Postgres. At the (unreachable) top the duplicate seq
        // fails the insert on unique(conversation_id, seq), a clear error instead of a trap.
        let seq = lastSeq(conversationID).addingSaturated(1)
        lastSeqs[conversationID] = seq
        for member in Set(members) where tracked.contains(member) && isMember(MemberKey(conversationID: conversationID, userID: member)) {
            totals[member, default: 0] = total(member).addingSaturated(1)
        }
        return seq
    }

    /// Moves a member's pointer forward (never back); returns how many messages became read.
    @discardableResult
    mutating func advance(_ key: MemberKey, to seq: Int64) -> Int64 {
        guard var pointer = pointers[key] else { return 0 }
        let before = unread(key)
        let count = pointer.advance(to: seq)
        guard count > 0 else { return 0 }
        pointers[key] = pointer
        moved.insert(key)
        if tracked.contains(key.userID) { totals[key.userID] = total(key.userID).subtractingSaturated(before - unread(key)) }
        return count
    }

    /// The final pointers of the memberships that moved, sorted by key.
    func movedPointers() -> [(key: MemberKey, lastReadSeq: Int64)] {
        moved.sorted().map { (key: $0, lastReadSeq: pointers[$0]?.lastReadSeq ?? 0) }
    }
}
