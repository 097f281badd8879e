import Testing
@testable import Shared

/// The pure rules of rooms (issue 13): permissions, departures, invite codes, profile fields.
@Suite struct RoomRulesTests {
    private static let open = RoomFacts(isPrivate: false, memberCount: 3, adminCount: 1, memberLimit: 10)
    private static let closed = RoomFacts(isPrivate: true, memberCount: 3, adminCount: 1, memberLimit: 10)

    private func refusal(_ request: RoomRequest, _ actor: RoomRole?, _ room: RoomFacts = Self.open) -> String? {
        RoomRules.refusal(of: request, actor: actor, room: room)?.name
    }

    @Test func membersReadAndSendAndNonMembersOfAPublicRoomMustJoinFirst() {
        for request in [RoomRequest.read, .send, .leave] {
            #expect(refusal(request, .member) == nil)
            #expect(refusal(request, .admin) == nil)
            #expect(refusal(request, nil) == "not_a_member")
        }
        #expect(refusal(.view, nil) == nil, "a public room can be looked at")
        #expect(refusal(.join, nil) == nil)
        #expect(refusal(.join, .member) == "already_a_member")
    }

    @Test func aPrivateRoomDoesNotExistForNonMembersWithoutItsCode() {
        for request in [RoomRequest.view, .read, .send, .join, .leave, .update, .delete, .addMember(targetRole: nil)] {
            #expect(refusal(request, nil, Self.closed) == "room_not_found", "\(request)")
        }
        #expect(refusal(.joinByInvite(codeMatches: false), nil, Self.closed) == "invite_invalid")
        #expect(refusal(.joinByInvite(codeMatches: true), nil, Self.closed) == nil)
        #expect(refusal(.joinByInvite(codeMatches: true), .member, Self.closed) == "already_a_member")
        #expect(refusal(.view, .member, Self.closed) == nil)
        #expect(refusal(.join, .member, Self.closed) == "already_a_member")
    }

    @Test func adminActionsNeedAnAdmin() {
        let adminOnly: [RoomRequest] = [.update, .rotateInvite, .delete, .addMember(targetRole: nil),
                                        .removeMember(targetRole: .member, isSelf: false), .changeRole(targetRole: .member, to: .admin, isSelf: false)]
        for request in adminOnly {
            #expect(refusal(request, .admin) == nil, "\(request)")
            #expect(refusal(request, .member) == "admin_required", "\(request)")
            #expect(refusal(request, nil) == "not_a_member", "\(request)")
        }
    }

    @Test func targetsMustBeWhatTheRequestAssumes() {
        #expect(refusal(.addMember(targetRole: .member), .admin) == "already_a_member")
        #expect(refusal(.removeMember(targetRole: nil, isSelf: false), .admin) == "member_not_found")
        #expect(refusal(.changeRole(targetRole: nil, to: .admin, isSelf: false), .admin) == "member_not_found")
        #expect(refusal(.removeMember(targetRole: .member, isSelf: true), .member) == nil, "removing oneself is leaving")
    }

    @Test func theOnlyAdminCannotStepDownWhileOthersRemain() {
        #expect(refusal(.changeRole(targetRole: .admin, to: .member, isSelf: true), .admin) == "last_admin")
        let twoAdmins = RoomFacts(isPrivate: false, memberCount: 3, adminCount: 2, memberLimit: 10)
        #expect(refusal(.changeRole(targetRole: .admin, to: .member, isSelf: true), .admin, twoAdmins) == nil)
        let alone = RoomFacts(isPrivate: false, memberCount: 1, adminCount: 1, memberLimit: 10)
        #expect(refusal(.changeRole(targetRole: .admin, to: .member, isSelf: true), .admin, alone) == nil)
        #expect(refusal(.changeRole(targetRole: .admin, to: .member, isSelf: false), .admin, twoAdmins) == nil)
    }

    @Test func aFullRoomTakesNoOneAndAGoneRoomIsNotFoundForAnyone() {
        let full = RoomFacts(isPrivate: false, memberCount: 10, adminCount: 1, memberLimit: 10)
        #expect(refusal(.join, nil, full) == "room_full")
        #expect(refusal(.addMember(targetRole: nil), .admin, full) == "room_full")
        let fullPrivate = RoomFacts(isPrivate: true, memberCount: 10, adminCount: 1, memberLimit: 10)
        #expect(refusal(.joinByInvite(codeMatches: true), nil, fullPrivate) == "room_full")
        #expect(refusal(.send, .member, full) == nil)
        let gone = RoomFacts(isPrivate: false, isGone: true, memberCount: 0, adminCount: 0, memberLimit: 10)
        for actor in [RoomRole.admin, .member, nil] {
            #expect(refusal(.view, actor, gone) == "room_not_found")
            #expect(refusal(.join, actor, gone) == "room_not_found")
        }
    }

    @Test func everyRefusalHasTheStatusItsCodeSays() {
        #expect(ErrorCode.roomNotFound.status == .notFound && ErrorCode.inviteInvalid.status == .notFound)
        #expect(ErrorCode.notAMember.status == .forbidden && ErrorCode.adminRequired.status == .forbidden)
        #expect(ErrorCode.alreadyAMember.status == .conflict && ErrorCode.roomFull.status == .conflict && ErrorCode.lastAdmin.status == .conflict)
    }

    // MARK: Departures

    private static func member(_ id: Int64, _ role: RoomRole, at joined: Int64) -> RoomMember {
        RoomMember(userID: id, role: role, joinedAtMilliseconds: joined)
    }

    @Test func theLastAdminLeavingPromotesTheOldestMember() {
        let members = [Self.member(1, .admin, at: 100), Self.member(2, .member, at: 300), Self.member(3, .member, at: 200)]
        #expect(RoomDeparture.plan(1, members: members) == .leavesPromoting(3))
        #expect(RoomDeparture.plan(2, members: members) == .leaves)
        #expect(RoomDeparture.plan(9, members: members) == nil)
        // Equal join times: the lower id first.
        let tie = [Self.member(5, .admin, at: 1), Self.member(8, .member, at: 2), Self.member(7, .member, at: 2)]
        #expect(RoomDeparture.plan(5, members: tie) == .leavesPromoting(7))
    }

    @Test func anotherAdminLeftMeansNoPromotionAndTheLastMemberArchives() {
        let members = [Self.member(1, .admin, at: 1), Self.member(2, .admin, at: 2), Self.member(3, .member, at: 3)]
        #expect(RoomDeparture.plan(1, members: members) == .leaves)
        #expect(RoomDeparture.plan(1, members: [Self.member(1, .admin, at: 1)]) == .leavesArchiving)
        #expect(RoomDeparture.plan(4, members: [Self.member(4, .member, at: 1)]) == .leavesArchiving)
    }

    // MARK: Invite codes and fields

    @Test func inviteCodesAreLongRandomAndCheckedForShape() {
        let codes = (0..<200).map { _ in InviteCode.generate() }
        #expect(Set(codes).count == codes.count)
        #expect(codes.allSatisfy { $0.utf8.count == InviteCode.length && InviteCode.isWellFormed($0) })
        #expect(InviteCode.byteCount * 8 >= 96)
        for bad in ["", "short", String(repeating: "a", count: 21), String(repeating: "a", count: 23), "aaaaaaaaaaaaaaaaaaaaa=",
                    "aaaaaaaaaaaaaaaaaaaa a", "aaaaaaaaaaaaaaaaaaaaa/", "ééééééééééé"] {
            #expect(!InviteCode.isWellFormed(bad), "\(bad)")
        }
    }

    @Test func namesAndDescriptionsAreTrimmedBoundedAndPrintable() throws {
        #expect(try RoomProfileRules.name("  Team  ") == "Team")
        #expect(try RoomProfileRules.name(String(repeating: "é", count: 100)).unicodeScalars.count == 100)
        for bad in ["", "   ", String(repeating: "x", count: 101), "a\u{0}b", "tab\there"] {
            #expect(throws: APIError.self) { try RoomProfileRules.name(bad) }
        }
        #expect(try RoomProfileRules.description(nil) == nil)
        #expect(try RoomProfileRules.description("   ") == nil)
        #expect(try RoomProfileRules.description(" line one\nline two ") == "line one\nline two")
        #expect(throws: APIError.self) { try RoomProfileRules.description(String(repeating: "x", count: 1001)) }
        #expect(throws: APIError.self) { try RoomProfileRules.description("bell\u{7}") }
        do {
            _ = try RoomProfileRules.name("")
        } catch {
            #expect(error.code == .validationFailed && error.details["field"] == "name")
        }
    }
}
