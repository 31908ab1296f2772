#include "cordon/engine/id_shift.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cordon/error.hpp"

namespace cordon::engine {

std::uint32_t shift_id(std::uint32_t id, const IdRange& from, const IdRange& to) {
    if (!from.contains(id)) return id;
    const std::uint32_t offset = id - from.start;
    if (offset >= to.count) return id;  // the target range is smaller: leave it alone
    return to.start + offset;
}

namespace {

// nftw has no user-data argument: one walk at a time per thread.
thread_local const IdMapping* t_from = nullptr;
thread_local const IdMapping* t_to = nullptr;
thread_local ShiftStats* t_stats = nullptr;
thread_local std::string* t_failure = nullptr;

int visit(const char* path, const struct stat* st, int type, struct FTW*) {
    if (type == FTW_NS || type == FTW_DNR) {
        *t_failure = std::string("cannot read ") + path;
        return 1;
    }
    ++t_stats->entries;
    const uid_t uid = shift_id(st->st_uid, t_from->uids, t_to->uids);
    const gid_t gid = shift_id(st->st_gid, t_from->gids, t_to->gids);
    if (uid == st->st_uid && gid == st->st_gid) return 0;
    if (::lchown(path, uid, gid) != 0) {
        *t_failure = std::string("cannot change the owner of ") + path + ": " + errno_string(errno);
        return 1;
    }
    // chown clears set-user-ID and set-group-ID bits of non-folders; put them back.
    if (!S_ISLNK(st->st_mode) && !S_ISDIR(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID))) {
        if (::chmod(path, st->st_mode & 07777) != 0) {
            *t_failure = std::string("cannot restore the mode of ") + path + ": " + errno_string(errno);
            return 1;
        }
    }
    ++t_stats->changed;
    return 0;
}

}  // namespace

ShiftStats shift_ownership(const std::string& root, const IdMapping& from, const IdMapping& to) {
    ShiftStats stats;
    std::string failure;
    t_from = &from;
    t_to = &to;
    t_stats = &stats;
    t_failure = &failure;
    const int rc = ::nftw(root.c_str(), visit, 64, FTW_PHYS | FTW_MOUNT);
    t_from = t_to = nullptr;
    t_stats = nullptr;
    t_failure = nullptr;
    if (rc != 0) {
        if (failure.empty()) failure = "cannot walk: " + errno_string(errno);
        throw Error("shifting file ownership failed: " + failure, root,
                    "the volume keeps its previous owners; check the data disk with 'vmctl logs agent'");
    }
    return stats;
}

}  // namespace cordon::engine
