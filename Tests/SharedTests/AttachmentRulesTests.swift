import Testing
@testable import Shared

/// Issue 14: message types and attachments, every rule refused with `validation_failed`.
@Suite struct AttachmentRulesTests {
    private static func refusal(type: MessageType, content: String = "", url: String? = nil, name: String? = nil, size: Int64? = nil,
                                mimeType: String? = nil, policy: AttachmentPolicy = AttachmentPolicy()) -> String? {
        do {
            try AttachmentRules.validate(type: type, content: content, url: url, name: name, size: size, mimeType: mimeType,
                                         maxContentLength: 4000, policy: policy)
            return nil
        } catch {
            return error.code == .validationFailed ? error.message : "wrong code \(error.code.name)"
        }
    }

    @Test func textAndEmojiCarryContentAndNoAttachment() {
        #expect(Self.refusal(type: .text, content: "hi") == nil)
        #expect(Self.refusal(type: .text, content: "") != nil)
        #expect(Self.refusal(type: .text, content: "hi", url: "https://cdn.test/a.png")?.contains("only for image, file and voice") == true)
        #expect(Self.refusal(type: .text, content: "hi", size: 3)?.contains("attachmentSize") == true)
        for emoji in ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "1️⃣", "😀😀😀"] {
            #expect(Self.refusal(type: .emoji, content: emoji) == nil, "\(emoji)")
        }
        for notEmoji in ["hi", "😀 ok", "a😀", "1", String(repeating: "😀", count: 33), ""] {
            #expect(Self.refusal(type: .emoji, content: notEmoji) != nil, "\(notEmoji)")
        }
    }

    @Test func imageFileAndVoiceNeedAnAllowedHTTPSURL() {
        #expect(Self.refusal(type: .image, url: "https://cdn.test/a.png") == nil, "a caption is optional")
        #expect(Self.refusal(type: .image, content: "look", url: "https://cdn.test:8443/a.png?x=1#y") == nil)
        #expect(Self.refusal(type: .file)?.contains("required") == true)
        #expect(Self.refusal(type: .voice, url: "http://cdn.test/a.ogg")?.contains("https://") == true)
        #expect(Self.refusal(type: .voice, url: "http://cdn.test/a.ogg", policy: AttachmentPolicy(allowHTTP: true)) == nil, "development")
        for bad in ["ftp://cdn.test/a", "https://", "https:///a", "https://user:pw@cdn.test/a", "https://cdn.test:99999/a", "https://cdn.test:x/a",
                    "https://cdn .test/a", "cdn.test/a", "https://cdn.test/" + String(repeating: "a", count: 2048), "https://[::1/a"] {
            #expect(Self.refusal(type: .file, url: bad) != nil, "\(bad)")
        }
        let hosts = AttachmentPolicy(hosts: ["cdn.example.com", "*.files.example.com"])
        #expect(Self.refusal(type: .file, url: "https://CDN.example.com/a", policy: hosts) == nil)
        #expect(Self.refusal(type: .file, url: "https://eu.files.example.com/a", policy: hosts) == nil)
        #expect(Self.refusal(type: .file, url: "https://files.example.com/a", policy: hosts) != nil, "*. means subdomains")
        #expect(Self.refusal(type: .file, url: "https://evil.com/a", policy: hosts)?.contains("ATTACHMENT_HOSTS") == true)
        #expect(Self.refusal(type: .file, url: "https://cdn.example.com.evil.com/a", policy: hosts) != nil)
        #expect(Self.refusal(type: .file, url: "https://evilcdn.example.com/a", policy: hosts) != nil)
    }

    @Test func nameSizeAndMediaTypeAreCheckedAgainstTheType() {
        let url = "https://cdn.test/x"
        #expect(Self.refusal(type: .image, url: url, name: "x.png", size: 1024, mimeType: "image/png") == nil)
        #expect(Self.refusal(type: .file, url: url, mimeType: "application/vnd.ms-excel") == nil)
        #expect(Self.refusal(type: .voice, url: url, mimeType: "audio/ogg") == nil)
        #expect(Self.refusal(type: .image, url: url, mimeType: "audio/ogg")?.contains("image/*") == true)
        #expect(Self.refusal(type: .voice, url: url, mimeType: "image/png")?.contains("audio/*") == true)
        for bad in ["png", "image/", "/png", "image/png/x", "image/p ng", String(repeating: "a", count: 120) + "/" + String(repeating: "b", count: 10)] {
            #expect(Self.refusal(type: .file, url: url, mimeType: bad) != nil, "\(bad)")
        }
        #expect(Self.refusal(type: .file, url: url, size: -1) != nil)
        #expect(Self.refusal(type: .file, url: url, size: AttachmentRules.maxSize + 1) != nil)
        #expect(Self.refusal(type: .file, url: url, name: "") != nil)
        #expect(Self.refusal(type: .file, url: url, name: "a\nb") != nil)
        #expect(Self.refusal(type: .file, url: url, name: String(repeating: "n", count: 256)) != nil)
    }

    @Test func attachmentHostListsParseOrRefuse() {
        #expect(AttachmentPolicy.hosts(from: "") == [])
        #expect(AttachmentPolicy.hosts(from: " cdn.example.com , *.Files.example.com") == ["cdn.example.com", "*.files.example.com"])
        for bad in ["https://cdn.example.com", "cdn.example.com/path", "*.", ".example.com", "exa mple.com", "ex_ample.com"] {
            #expect(AttachmentPolicy.hosts(from: bad) == nil, "\(bad)")
        }
    }
}
