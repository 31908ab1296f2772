#include "cordon/admin_policy.hpp"

#include <gtest/gtest.h>

#include "cordon/error.hpp"

namespace {

using cordon::AdminPolicy;
using nlohmann::json;

const std::string kHex(64, 'a');

std::string error_of(const json& admin) {
    try {
        cordon::parse_admin_policy(admin);
    } catch (const cordon::Error& e) {
        return e.what();
    }
    return "";
}

TEST(AdminPolicy, ReadsEveryKeyOfALegitimateFile) {
    const json admin = {
        {"isolation", true},  // not a policy key: left to the caller
        {"socketMountImages", {"docker/compose@sha256:" + kHex, "sha256:" + kHex}},
        {"allowDerivedImages", true},
        {"commandList", {{"type", "allow"}, {"commands", {"container.list", "image.*"}}}},
        {"lockVmShell", true}};
    const AdminPolicy p = cordon::parse_admin_policy(admin);
    EXPECT_EQ(p.socket_mount_images.size(), 2u);
    EXPECT_TRUE(p.allow_derived_images);
    EXPECT_EQ(p.command_list_type, "allow");
    EXPECT_EQ(p.commands, (std::vector<std::string>{"container.list", "image.*"}));
    EXPECT_TRUE(p.lock_vm_shell);
}

TEST(AdminPolicy, AnEmptyFileLocksNothingAndAllowsNoImage) {
    const AdminPolicy p = cordon::parse_admin_policy(json::object());
    EXPECT_TRUE(p.socket_mount_images.empty());
    EXPECT_FALSE(p.lock_vm_shell);
    EXPECT_EQ(p.command_list_type, "deny");
}

TEST(AdminPolicy, ImagesMustBeNamedByDigest) {
    EXPECT_NE(error_of({{"socketMountImages", {"docker/compose:latest"}}}), "");  // a tag
    EXPECT_NE(error_of({{"socketMountImages", {"docker/compose"}}}), "");
    EXPECT_NE(error_of({{"socketMountImages", {"sha256:abc"}}}), "");  // short
    EXPECT_NE(error_of({{"socketMountImages", {"sha256:" + std::string(64, 'G')}}}), "");
    EXPECT_NE(error_of({{"socketMountImages", {"@sha256:" + kHex}}}), "");  // no repository
    EXPECT_NE(error_of({{"socketMountImages", {"Evil Repo@sha256:" + kHex}}}), "");
    EXPECT_NE(error_of({{"socketMountImages", {"r@sha256:" + kHex + "0"}}}), "");  // too long
    EXPECT_NE(error_of({{"socketMountImages", "sha256:" + kHex}}), "");            // not an array
    EXPECT_NE(error_of({{"socketMountImages", {42}}}), "");
    EXPECT_EQ(error_of({{"socketMountImages", {"registry.local:5000/a/b@sha256:" + kHex}}}), "");
    EXPECT_NE(error_of({{"socketMountImages", {"alpine"}}}).find("digest"), std::string::npos);
}

TEST(AdminPolicy, CommandListIsCheckedStrictly) {
    EXPECT_NE(error_of({{"commandList", {{"type", "maybe"}, {"commands", json::array()}}}}), "");
    EXPECT_NE(error_of({{"commandList", {{"commands", {"image.push"}}}}}), "");  // no type
    EXPECT_NE(error_of({{"commandList", {{"type", "deny"}, {"comands", json::array()}}}}), "");
    EXPECT_NE(error_of({{"commandList", {{"type", "deny"}, {"commands", {"image push"}}}}}), "");
    EXPECT_NE(error_of({{"commandList", {{"type", "deny"}, {"commands", {"Image.Push"}}}}}), "");
    EXPECT_NE(error_of({{"commandList", {{"type", "deny"}, {"commands", {"image..push"}}}}}), "");
    EXPECT_NE(error_of({{"commandList", {{"type", "deny"}, {"commands", {".*"}}}}}), "");
    EXPECT_NE(error_of({{"commandList", {{"type", "deny"}, {"commands", {""}}}}}), "");
    EXPECT_NE(error_of({{"commandList", {"image.push"}}}), "");
    EXPECT_EQ(error_of({{"commandList", {{"type", "deny"}, {"commands", {"*"}}}}}), "");
    EXPECT_EQ(error_of({{"commandList", {{"type", "deny"}, {"commands", {"image.build.prune"}}}}}),
              "");
}

TEST(AdminPolicy, BooleansMustBeBooleans) {
    EXPECT_NE(error_of({{"lockVmShell", "yes"}}), "");
    EXPECT_NE(error_of({{"lockVmShell", 1}}), "");
    EXPECT_NE(error_of({{"allowDerivedImages", "true"}}), "");
    EXPECT_NE(error_of(json::array()), "");
}

TEST(AdminPolicy, TheGuestDocumentRoundTrips) {
    AdminPolicy p;
    p.socket_mount_images = {"docker/compose@sha256:" + kHex};
    p.command_list_type = "allow";
    p.commands = {"container.list"};
    p.lock_vm_shell = true;
    const std::string doc = cordon::guest_document(p);
    EXPECT_EQ(doc.find('\n'), std::string::npos);  // compact
    EXPECT_EQ(cordon::parse_guest_document(doc), p);
    EXPECT_EQ(cordon::parse_guest_document(cordon::guest_document(AdminPolicy{})), AdminPolicy{});
}

TEST(AdminPolicy, TheGuestRefusesWhatTheHostWouldNotSend) {
    using cordon::parse_guest_document;
    EXPECT_THROW(parse_guest_document(""), cordon::Error);
    EXPECT_THROW(parse_guest_document("{"), cordon::Error);
    EXPECT_THROW(parse_guest_document("[]"), cordon::Error);
    EXPECT_THROW(parse_guest_document(R"({"lockVmShell":false})"), cordon::Error);  // no version
    EXPECT_THROW(parse_guest_document(R"({"version":2})"), cordon::Error);
    EXPECT_THROW(parse_guest_document(R"({"version":1,"isolation":false})"), cordon::Error);
    EXPECT_THROW(parse_guest_document(R"({"version":1,"lockVmShell":"no"})"), cordon::Error);
    EXPECT_THROW(parse_guest_document(std::string(cordon::kMaxGuestDocument + 1, ' ')),
                 cordon::Error);
    EXPECT_NO_THROW(parse_guest_document(R"({"version":1})"));
}

TEST(AdminPolicy, DenyAllLocksTheShellAndAllowsNothing) {
    const AdminPolicy p = cordon::deny_all_admin_policy();
    EXPECT_TRUE(p.lock_vm_shell);
    EXPECT_TRUE(p.socket_mount_images.empty());
    EXPECT_EQ(p.command_list_type, "allow");
    EXPECT_TRUE(p.commands.empty());
}

}  // namespace
