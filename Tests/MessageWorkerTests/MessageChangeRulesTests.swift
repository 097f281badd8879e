import Testing
@testable import MessageWorker
@testable import Shared

/// Issue 14: who may edit or delete a message, and when a change writes nothing.
@Suite struct MessageChangeRulesTests {
    private static let alice: Int64 = 1
    private static let bob: Int64 = 2

    private static func facts(sender: Int64 = alice, member: Bool = true, role: RoomRole? = nil, deleted: Bool = false,
                              edited: Bool = false, content: String = "hello", insideWindow: Bool = true) -> MessageChangeRules.Facts {
        MessageChangeRules.Facts(senderID: sender, actorIsMember: member, actorRoomRole: role, isDeleted: deleted, isEdited: edited,
                                 content: content, insideEditWindow: insideWindow)
    }

    private static func code(_ decision: MessageChangeRules.Decision) -> String? {
        if case .refused(let error) = decision { return error.code.name }
        return nil
    }

    @Test func onlyTheSenderEditsInsideTheWindowAndNeverADeletedMessage() {
        #expect(MessageChangeRules.edit(by: Self.alice, to: "new", Self.facts()) == .change)
        #expect(Self.code(MessageChangeRules.edit(by: Self.bob, to: "new", Self.facts())) == "not_message_sender")
        #expect(Self.code(MessageChangeRules.edit(by: Self.bob, to: "new", Self.facts(role: .admin))) == "not_message_sender",
                "a room admin may delete, not edit")
        #expect(Self.code(MessageChangeRules.edit(by: Self.alice, to: "new", Self.facts(deleted: true))) == "message_deleted")
        #expect(Self.code(MessageChangeRules.edit(by: Self.alice, to: "new", Self.facts(insideWindow: false))) == "edit_window_passed")
        #expect(Self.code(MessageChangeRules.edit(by: Self.bob, to: "new", Self.facts(member: false))) == "message_not_found",
                "a stranger learns nothing about the message")
    }

    @Test func theSameTextAgainChangesNothingAndAnnouncesOnlyAnEditedMessage() {
        #expect(MessageChangeRules.edit(by: Self.alice, to: "hello", Self.facts()) == .unchanged(announce: false))
        #expect(MessageChangeRules.edit(by: Self.alice, to: "hello", Self.facts(edited: true)) == .unchanged(announce: true),
                "a redelivered edit publishes its event again")
        #expect(MessageChangeRules.edit(by: Self.alice, to: "hello", Self.facts(edited: true, insideWindow: false)) == .unchanged(announce: true))
    }

    @Test func theSenderOrARoomAdminDeletesAndADeleteIsIdempotent() {
        #expect(MessageChangeRules.delete(by: Self.alice, Self.facts()) == .change)
        #expect(MessageChangeRules.delete(by: Self.alice, Self.facts(insideWindow: false)) == .change, "no window for deletes")
        #expect(MessageChangeRules.delete(by: Self.bob, Self.facts(role: .admin)) == .change)
        #expect(Self.code(MessageChangeRules.delete(by: Self.bob, Self.facts(role: .member))) == "not_message_sender")
        #expect(Self.code(MessageChangeRules.delete(by: Self.bob, Self.facts())) == "not_message_sender", "a direct conversation has no admin")
        #expect(Self.code(MessageChangeRules.delete(by: Self.bob, Self.facts(member: false))) == "message_not_found")
        #expect(MessageChangeRules.delete(by: Self.alice, Self.facts(deleted: true)) == .unchanged(announce: true))
        #expect(Self.code(MessageChangeRules.delete(by: Self.bob, Self.facts(role: .member, deleted: true))) == "not_message_sender")
    }

    @Test func editsAndDeletesTravelTheStreamAndGoToTheActorsShard() throws {
        let edit = ChatCommand.edit(messageID: 7, content: "new text")
        #expect(try ChatCommand.parse(type: edit.typeName, body: edit.body.objectValue ?? [:]) == edit)
        let delete = ChatCommand.delete(messageID: 7)
        #expect(try ChatCommand.parse(type: delete.typeName, body: delete.body.objectValue ?? [:]) == delete)
        #expect(throws: APIError.self) { try ChatCommand.parse(type: "edit", body: ["messageId": 7, "content": "  "]) }
        #expect(throws: APIError.self) { try ChatCommand.parse(type: "edit", body: ["messageId": 0, "content": "x"]) }
        let shards = CommandShards(count: 64, prefix: "chat:cmd")
        #expect(shards.shard(of: edit, userID: 5) == shards.shard(of: .read(messageID: 7), userID: 5))
        #expect(shards.shard(of: delete, userID: 5) == shards.shard(directBetween: 5, 5))
    }
}

/// Issue 14: who may react, and what a reaction may be.
@Suite struct ReactionRulesTests {
    @Test func membersReactToMessagesThatAreNotDeleted() {
        let facts = MessageChangeRules.Facts(senderID: 1, actorIsMember: true, actorRoomRole: nil, isDeleted: false, isEdited: false,
                                             content: "hi", insideEditWindow: false)
        #expect(MessageChangeRules.react(by: 2, facts) == .change)
        var deleted = facts
        deleted.isDeleted = true
        if case .refused(let error) = MessageChangeRules.react(by: 2, deleted) { #expect(error.code == .messageDeleted) } else { Issue.record("reacted to a deleted message") }
        var stranger = facts
        stranger.actorIsMember = false
        if case .refused(let error) = MessageChangeRules.react(by: 2, stranger) { #expect(error.code == .messageNotFound) } else { Issue.record("a stranger reacted") }
    }

    @Test func aReactionIsOneEmoji() throws {
        for emoji in ["👍", "👍🏽", "❤️", "👨‍👩‍👧", "🇫🇷"] { try ReactionRules.validate(emoji) }
        for bad in ["", "👍👍", "a", "+1", " 👍", "👍 "] {
            #expect(throws: APIError.self, "\(bad)") { try ReactionRules.validate(bad) }
        }
        let react = ChatCommand.react(messageID: 9, emoji: "🎉", add: false)
        #expect(try ChatCommand.parse(type: react.typeName, body: react.body.objectValue ?? [:]) == react)
    }
}
