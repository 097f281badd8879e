/// The name of a Socket.IO event of the chat protocol, declared once here: what clients send
/// (`client`), what the server emits (`server`). Gateways route and count events by these values,
/// workers and gateways publish them, and docs/PROTOCOL.md describes each.
package struct SocketEvent: Sendable, Hashable, CustomStringConvertible {
    /// The event name on the wire.
    package let name: String

    private init(_ name: String) {
        self.name = name
    }

    package var description: String { name }

    // MARK: Client → server

    /// `ping [any]` → `{pong, time, echo?}` (ack or event `pong`).
    package static let ping = SocketEvent("ping")
    /// `whoami` → `{userId, socketId}` (ack or event `whoami`).
    package static let whoami = SocketEvent("whoami")
    /// `authenticate {token}`: a fresh token extends the socket's life.
    package static let authenticate = SocketEvent("authenticate")
    /// `requestServerAck {event, data}`: a diagnostic of server→client acks.
    package static let requestServerAck = SocketEvent("requestServerAck")
    /// `sendMessage {receiverId, content, ...}`.
    package static let sendMessage = SocketEvent("sendMessage")
    /// `messageRead {messageId}`.
    package static let messageRead = SocketEvent("messageRead")
    /// `markAllAsRead {senderId}`.
    package static let markAllAsRead = SocketEvent("markAllAsRead")
    /// `typing {receiverId}`; also relayed to the receiver as `typing {senderId, receiverId}`.
    package static let typing = SocketEvent("typing")
    /// `stopTyping {receiverId}`; also relayed to the receiver.
    package static let stopTyping = SocketEvent("stopTyping")
    /// `sync {since?, limit?}`; also the event answering it without an ack.
    package static let sync = SocketEvent("sync")
    /// `getOnlineUsers` → `[{userId, username}]` (ack or event `onlineUsers`).
    package static let getOnlineUsers = SocketEvent("getOnlineUsers")
    /// `createRoom {name, description?, isPrivate?}` → the room (issue 13; the twin of `POST /api/rooms`).
    package static let createRoom = SocketEvent("createRoom")
    /// `getRoom {roomId}` → the room.
    package static let getRoom = SocketEvent("getRoom")
    /// `getMyRooms {limit?, cursor?}` → `{rooms, nextCursor}`.
    package static let getMyRooms = SocketEvent("getMyRooms")
    /// `getPublicRooms {query?, limit?, cursor?}` → `{rooms, nextCursor}`.
    package static let getPublicRooms = SocketEvent("getPublicRooms")
    /// `joinRoom {roomId}` or `{inviteCode}` → the room.
    package static let joinRoom = SocketEvent("joinRoom")
    /// `leaveRoom {roomId}`.
    package static let leaveRoom = SocketEvent("leaveRoom")
    /// `getRoomMembers {roomId, limit?, afterUserId?}` → `{members}`.
    package static let getRoomMembers = SocketEvent("getRoomMembers")
    /// `addRoomMember {roomId, userId}` (admins).
    package static let addRoomMember = SocketEvent("addRoomMember")
    /// `removeRoomMember {roomId, userId}` (admins, or oneself).
    package static let removeRoomMember = SocketEvent("removeRoomMember")
    /// `setRoomMemberRole {roomId, userId, role}` (admins).
    package static let setRoomMemberRole = SocketEvent("setRoomMemberRole")
    /// `updateRoom {roomId, name?, description?, isPrivate?}` (admins).
    package static let updateRoom = SocketEvent("updateRoom")
    /// `rotateRoomInvite {roomId, revoke?}` (admins).
    package static let rotateRoomInvite = SocketEvent("rotateRoomInvite")
    /// `deleteRoom {roomId}` (admins).
    package static let deleteRoom = SocketEvent("deleteRoom")
    /// `getRoomMessages {roomId, before?, after?, limit?}` → `{messages, hasMore}`.
    package static let getRoomMessages = SocketEvent("getRoomMessages")
    /// `getMessageReceipts {roomId, messageId}` → `{messageId, seq, members, delivered, read}`.
    package static let getMessageReceipts = SocketEvent("getMessageReceipts")
    /// `messageDelivered {roomId, seq}`: this device received the room's messages up to `seq`.
    package static let messageDelivered = SocketEvent("messageDelivered")
    /// `presenceSubscribe {userIds}` → `[{userId, isOnline}]`: this socket hears `userOnline` /
    /// `userOffline` of these users (people it shares a conversation or room with; at most 500),
    /// replacing its earlier subscription.
    package static let presenceSubscribe = SocketEvent("presenceSubscribe")
    /// `getConversations {limit?, cursor?}` → `{conversations, nextCursor, totalUnread}`: direct
    /// conversations and rooms, most recent activity first.
    package static let getConversations = SocketEvent("getConversations")
    /// `getUnreadCounts` → `{totalUnread, conversations: [{conversationId, kind, unreadCount}], hasMore}`.
    package static let getUnreadCounts = SocketEvent("getUnreadCounts")
    /// `searchMessages {q, mode?, conversationId?, before?, limit?}` → `{messages, hasMore, nextBefore}`.
    package static let searchMessages = SocketEvent("searchMessages")
    /// `addReaction {messageId, emoji}` / `removeReaction {messageId, emoji}` → the message's reactions.
    package static let addReaction = SocketEvent("addReaction")
    package static let removeReaction = SocketEvent("removeReaction")
    /// `editMessage {messageId, content}` → the edited message (its sender, within the edit window).
    package static let editMessage = SocketEvent("editMessage")
    /// `deleteMessage {messageId}` → the deleted message (its sender, or an admin of its room).
    package static let deleteMessage = SocketEvent("deleteMessage")
    /// `getRoomPresence {roomId, limit?, afterUserId?}` → `{roomId, online, members}`: how many
    /// members are online and a page of the online ones.
    package static let getRoomPresence = SocketEvent("getRoomPresence")

    // MARK: Server → client

    /// The answer to `ping` without an ack.
    package static let pong = SocketEvent("pong")
    /// A problem with something the client sent, or why the socket is closing.
    package static let error = SocketEvent("error")
    /// The gateway's subscription came back, or a session could not be recovered: reload state.
    package static let resync = SocketEvent("resync")
    /// The client's new connection state recovery offset (issue 15), after a message or change
    /// event: a Socket.IO 4.6+ client keeps it and presents it when it reconnects.
    package static let recoveryOffset = SocketEvent("recoveryOffset")
    /// The client's online contacts (after CONNECT, or for `getOnlineUsers`).
    package static let onlineUsers = SocketEvent("onlineUsers")
    /// A contact's first connection opened.
    package static let userOnline = SocketEvent("userOnline")
    /// A contact's last connection closed.
    package static let userOffline = SocketEvent("userOffline")
    /// To every device of the sender: a message was stored.
    package static let messageSent = SocketEvent("messageSent")
    /// To every device of the receiver: a new message.
    package static let receiveMessage = SocketEvent("receiveMessage")
    /// To every device of the reader after `messageRead`.
    package static let messageReadConfirmed = SocketEvent("messageReadConfirmed")
    /// To every device of the sender after `messageRead`.
    package static let messageReadByReceiver = SocketEvent("messageReadByReceiver")
    /// To every device of the reader after `markAllAsRead`.
    package static let allMessagesRead = SocketEvent("allMessagesRead")
    /// To every device of the sender after `markAllAsRead` or `mark-as-read`.
    package static let messagesReadByReceiver = SocketEvent("messagesReadByReceiver")
    /// To every device of a user who created, joined or was added to a room: the room.
    package static let roomJoined = SocketEvent("roomJoined")
    /// To every device of a user who left or was removed from a room, or whose room was deleted.
    package static let roomLeft = SocketEvent("roomLeft")
    /// To the room's other members: someone joined or was added.
    package static let memberJoined = SocketEvent("memberJoined")
    /// To the room's remaining members: someone left or was removed.
    package static let memberLeft = SocketEvent("memberLeft")
    /// To the room's members: a member's role changed (an admin's change, or a promotion).
    package static let memberRoleChanged = SocketEvent("memberRoleChanged")
    /// To the room's members: its name, description or privacy changed.
    package static let roomUpdated = SocketEvent("roomUpdated")
    /// To a room's other members: a member read up to `lastReadSeq` (at most one a second per member).
    package static let memberRead = SocketEvent("memberRead")
    /// To a room's other members: a member's devices received up to `lastDeliveredSeq` (at most
    /// one a second per member).
    package static let memberDelivered = SocketEvent("memberDelivered")
    /// To every device of every member: a message's content changed (issue 14).
    package static let messageEdited = SocketEvent("messageEdited")
    /// To every device of every member: a message was deleted (its content is gone).
    package static let messageDeleted = SocketEvent("messageDeleted")
    /// To every device of every member: someone added or removed a reaction.
    package static let reactionAdded = SocketEvent("reactionAdded")
    package static let reactionRemoved = SocketEvent("reactionRemoved")

    // MARK: Lists

    /// Every event a client may send.
    package static let client: [SocketEvent] = [
        .ping, .whoami, .authenticate, .requestServerAck, .sendMessage, .messageRead, .markAllAsRead, .typing,
        .stopTyping, .sync, .getOnlineUsers, .presenceSubscribe, .editMessage, .deleteMessage, .searchMessages, .getConversations, .getUnreadCounts,
        .addReaction, .removeReaction,
    ] + rooms

    /// The room requests (issue 13), each the twin of a `/api/rooms` route. Without an ack, the
    /// answer of a `get…` comes back as an event of the same name.
    package static let rooms: [SocketEvent] = [
        .createRoom, .getRoom, .getMyRooms, .getPublicRooms, .joinRoom, .leaveRoom, .getRoomMembers, .addRoomMember,
        .removeRoomMember, .setRoomMemberRole, .updateRoom, .rotateRoomInvite, .deleteRoom, .getRoomMessages, .getMessageReceipts,
        .messageDelivered, .getRoomPresence,
    ]

    /// Every event the server emits.
    package static let server: [SocketEvent] = [
        .pong, .whoami, .error, .resync, .sync, .onlineUsers, .userOnline, .userOffline, .messageSent, .receiveMessage,
        .messageReadConfirmed, .messageReadByReceiver, .allMessagesRead, .messagesReadByReceiver, .typing, .stopTyping,
        .roomJoined, .roomLeft, .memberJoined, .memberLeft, .memberRoleChanged, .roomUpdated, .memberRead, .memberDelivered,
        .getRoom, .getMyRooms, .getPublicRooms, .getRoomMembers, .getRoomMessages, .getMessageReceipts, .getRoomPresence,
        .presenceSubscribe, .messageEdited, .messageDeleted, .searchMessages, .getConversations, .getUnreadCounts,
        .reactionAdded, .reactionRemoved, .recoveryOffset,
    ]

    /// The client event named `name`, if the protocol has one.
    package init?(client name: String) {
        guard let event = Self.client.first(where: { $0.name == name }) else { return nil }
        self = event
    }
}
