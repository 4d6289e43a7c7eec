/* fanprobe.c: can fanotify watch a root (fanprobe.h)? */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fanprobe.h"

#define HANDLE_BYTES 128

const char *
fanprobe_refusal(int err, int at_init)
{
	switch (err) {
	case EPERM:
		return "operation not permitted (a fanotify file system mark needs CAP_SYS_ADMIN)";
	case EINVAL:
	case ENOSYS:
		return at_init ? "kernel older than 5.9 (no FAN_REPORT_DFID_NAME)" :
		    "the kernel refuses a file system mark here (kernel older than 5.9?)";
	case EXDEV:
	case ENODEV:
	case EOPNOTSUPP:
		return "the file system has no fsid or file handles (e.g. a btrfs subvolume, "
		    "an old tmpfs, FUSE)";
	}
	return strerror(err);
}

/* The refusal of a mark on root's file system (err from the kernel). */
static void
refused(struct chj_error *e, const char *root, int err)
{
	chj_error_set(e, CHJ_ERR_REFUSED, 0, "cannot mark the file system of '%s' with fanotify: %s",
	    root, fanprobe_refusal(err, 0));
	e->errnum = err;
}

int
fanprobe_root(const char *root, struct chj_error *e)
{
	unsigned base = FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC;
	struct {
		struct file_handle fh;
		unsigned char h[HANDLE_BYTES];
	} buf;
	struct statfs sfs;
	int fd, dfd = -1, hfd, mount_id, err, rc = -1;

	fd = fanotify_init(base | FAN_REPORT_DFID_NAME_TARGET, O_RDONLY | O_LARGEFILE);
	if (fd < 0 && errno == EINVAL)
		fd = fanotify_init(base | FAN_REPORT_DFID_NAME, O_RDONLY | O_LARGEFILE);
	if (fd < 0) {
		err = errno;
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "cannot use fanotify: %s", fanprobe_refusal(err, 1));
		e->errnum = err;
		return -1;
	}
	if (statfs(root, &sfs) < 0) {
		chj_error_set(e, errno == ENOENT ? CHJ_ERR_NOTFOUND : CHJ_ERR_SYS, errno,
		    "cannot look at '%s'", root);
		goto done;
	}
	buf.fh.handle_bytes = HANDLE_BYTES;
	if (name_to_handle_at(AT_FDCWD, root, &buf.fh, &mount_id, 0) < 0) {
		refused(e, root, errno);
		goto done;
	}
	if (sfs.f_fsid.__val[0] == 0 && sfs.f_fsid.__val[1] == 0) {
		refused(e, root, ENODEV);
		goto done;
	}
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FANPROBE_EVENTS, AT_FDCWD, root) < 0) {
		refused(e, root, errno);
		goto done;
	}
	if ((dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    (hfd = open_by_handle_at(dfd, &buf.fh, O_PATH | O_CLOEXEC)) < 0) {
		err = errno;
		chj_error_set(e, CHJ_ERR_REFUSED, 0, "cannot open file handles on the file system of "
		    "'%s': %s", root, err == EPERM ? "operation not permitted (open_by_handle_at needs "
		    "CAP_DAC_READ_SEARCH)" : strerror(err));
		e->errnum = err;
		goto done;
	}
	close(hfd);
	rc = 0;
done:
	if (dfd >= 0)
		close(dfd);
	close(fd);
	return rc;
}
