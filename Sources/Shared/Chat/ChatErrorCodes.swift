import API
import HTTP

// The message path's error codes, shared by workers (which put them in replies) and gateways.
extension ErrorCode {
    /// The other user of a send, a `markAllAsRead` or a lookup does not exist.
    package static let userNotFound = ErrorCode("user_not_found", .notFound, "no such user")
    /// A read names a message that does not exist.
    package static let messageNotFound = ErrorCode("message_not_found", .notFound, "no such message")
    /// A read names a message the user did not receive.
    package static let notARecipient = ErrorCode("not_a_recipient", .forbidden, "only the receiver of a message can mark it read")
    /// A send, `markAllAsRead` or typing naming oneself.
    package static let cannotMessageSelf = ErrorCode("cannot_message_self", .unprocessableContent, "you cannot send a message to yourself")
    /// A worker gave up on the command (it kept failing; see the dead-letter stream).
    package static let processingFailed = ErrorCode("processing_failed", .internalServerError, "the message could not be processed")
    /// No worker answered in time; the command may still be applied.
    package static let workerUnavailable = ErrorCode("worker_unavailable", .serviceUnavailable, "no message worker answered in time, retry shortly")
    /// A command type the worker does not know (a newer gateway).
    package static let unsupportedCommand = ErrorCode("unsupported_command", .unprocessableContent, "unknown command type")

    /// An edit of someone else's message, or a delete of it by anyone but a room's admin (issue 14).
    package static let notMessageSender = ErrorCode("not_message_sender", .forbidden,
                                                    "only the sender may change this message (or a room admin delete it)")
    /// An edit of a deleted message.
    package static let messageDeleted = ErrorCode("message_deleted", .conflict, "the message was deleted")
    /// An edit after the edit window (`EDIT_WINDOW_MS`) closed.
    package static let editWindowPassed = ErrorCode("edit_window_passed", .forbidden, "the message is too old to edit")

    /// A conversation id that is not one of the caller's direct conversations (issue 16).
    package static let conversationNotFound = ErrorCode("conversation_not_found", .notFound, "no such conversation")

    /// A reaction with a new emoji on a message that has `ReactionRules.maxDistinct` already.
    package static let tooManyReactions = ErrorCode("too_many_reactions", .conflict, "the message has as many different reactions as it may")

    /// Every code a worker may put in a reply, so the gateway answers each with its status.
    package static let replyCodes: [ErrorCode] = [
        .userNotFound, .messageNotFound, .notARecipient, .cannotMessageSelf, .processingFailed, .workerUnavailable,
        .unsupportedCommand, .notFound, .validationFailed, .databaseUnavailable, .redisUnavailable, .overloaded,
        .rateLimited, .rateLimiterUnavailable, .internalError,
        // Room commands (issue 13): the worker's authoritative refusals.
        .roomNotFound, .notAMember, .adminRequired, .alreadyAMember, .memberNotFound, .roomFull, .inviteInvalid, .lastAdmin,
        .tooManyRooms,
        // Message changes (issue 14).
        .notMessageSender, .messageDeleted, .editWindowPassed, .tooManyReactions,
    ]
}
