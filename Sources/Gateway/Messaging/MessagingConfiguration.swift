import Shared

/// Messaging settings of the gateway: where commands go, how long REST waits for a worker, the
/// content limit checked before enqueueing, and the typing relay's timing.
struct MessagingConfiguration: Sendable {
    /// The command shard streams commands are appended to, each conversation's to one shard (the
    /// workers read them with their group, one worker per shard).
    var commandShards: CommandShards
    /// How long a REST write (or a socket command with an ack) waits for the worker's reply.
    var replyTimeout: Duration
    /// Commands waiting for a worker's reply on this gateway beyond which new ones are refused
    /// (`overloaded` with `retryAfterMs`): the bound on what one gateway puts in the stream (issue 17).
    var maxPendingCommands: Int
    /// Most Unicode scalars in a message's `content` (the worker checks again with its own setting).
    var maxContentLength: Int
    /// A `typing` without a follow-up for this long ends with an automatic `stopTyping`.
    var typingTimeout: Duration
    /// Repeated `typing` events to one receiver within this interval only re-arm the deadline.
    var typingRepeat: Duration
    /// Receivers one socket may be typing to at the same time.
    var maxTypingReceivers: Int
    /// Default and largest page of `GET /api/messages/conversation/:id`.
    var historyDefaultLimit: Int
    var historyMaxLimit: Int
    /// Largest `limit` (messages per conversation) of a sync.
    var syncMaxLimit: Int
    /// Most conversations one sync or conversation list covers (most recent first).
    var maxConversations: Int
    /// Most members of one room (checked here first; the workers' setting decides).
    var roomMemberLimit: Int
    /// Which attachment URLs sends may carry (issue 14): https only (http too in development),
    /// any host or those of `ATTACHMENT_HOSTS`.
    var attachments = AttachmentPolicy()

    static let settings: [Setting] = [
        Setting("COMMAND_STREAM", ChatChannels.commandStream, "prefix of the command shard streams <prefix>:{s<n>} (same as the workers')"),
        Setting("COMMAND_SHARDS", String(CommandShards.defaultCount),
                "number of command shards, 1-\(CommandShards.maxCount) (same on every gateway and worker; see OPERATIONS.md to change it)"),
        Setting("COMMAND_REPLY_TIMEOUT_MS", "10000", "how long a write waits for a message worker before answering 503 worker_unavailable"),
        Setting("MAX_PENDING_COMMANDS", "10000", "writes waiting for a worker's reply on this gateway beyond which new ones are refused with 503 / ack error overloaded and retryAfterMs"),
        Setting("MESSAGE_MAX_LENGTH", "4000", "most characters (Unicode scalars) in a message's content"),
        Setting("TYPING_TIMEOUT_MS", "5000", "an automatic stopTyping is sent after this long without a new typing event"),
        Setting("TYPING_REPEAT_MS", "1000", "repeated typing events within this interval are not relayed again (the deadline is re-armed)"),
        Setting("ROOM_MAX_MEMBERS", String(RoomDefaults.memberLimit), "most members of one room (the same as the workers')"),
        Setting("ATTACHMENT_HOSTS", "",
                "hosts attachment URLs may point to, comma-separated (exact names or *.example.com); empty: any host"),
    ]

    /// The defaults, for tests.
    init() {
        commandShards = CommandShards(count: CommandShards.defaultCount)
        replyTimeout = .seconds(10)
        maxPendingCommands = 10_000
        maxContentLength = ChatLimits.maxContentLength
        typingTimeout = .seconds(5)
        typingRepeat = .seconds(1)
        maxTypingReceivers = 32
        historyDefaultLimit = 50
        historyMaxLimit = 200
        syncMaxLimit = 200
        maxConversations = 1000
        roomMemberLimit = RoomDefaults.memberLimit
    }

    init(reader: SettingsReader, isDevelopment: Bool = false) throws(ConfigurationError) {
        self.init()
        guard let hosts = AttachmentPolicy.hosts(from: reader.optionalString("ATTACHMENT_HOSTS") ?? "") else {
            throw ConfigurationError("ATTACHMENT_HOSTS", "must be host names separated by commas, e.g. cdn.example.com,*.files.example.com")
        }
        attachments = AttachmentPolicy(allowHTTP: isDevelopment, hosts: hosts)
        commandShards = CommandShards(count: try reader.int("COMMAND_SHARDS", in: 1...CommandShards.maxCount),
                                      prefix: try reader.string("COMMAND_STREAM"))
        replyTimeout = try reader.milliseconds("COMMAND_REPLY_TIMEOUT_MS", in: 100...120_000)
        maxPendingCommands = try reader.int("MAX_PENDING_COMMANDS", in: 1...1_000_000)
        maxContentLength = try reader.int("MESSAGE_MAX_LENGTH", in: 1...100_000)
        typingTimeout = try reader.milliseconds("TYPING_TIMEOUT_MS", in: 500...60_000)
        typingRepeat = try reader.milliseconds("TYPING_REPEAT_MS", in: 0...60_000)
        roomMemberLimit = try reader.int("ROOM_MAX_MEMBERS", in: 2...1_000_000)
        guard typingRepeat < typingTimeout else {
            throw ConfigurationError("TYPING_REPEAT_MS", "must be below TYPING_TIMEOUT_MS (\(typingTimeout.wholeMilliseconds))")
        }
    }
}
