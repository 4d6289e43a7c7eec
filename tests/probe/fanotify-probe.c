/* fanotify-probe.c: exits 0 when this kernel and these privileges let
 * chjournald's fanotify backend mark the file system holding DIR (and open
 * file handles there); else prints why and exits 1. The tests use it to skip
 * (not fail) their fanotify runs where fanotify is refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct {
		struct file_handle fh;
		unsigned char h[128];
	} buf;
	int fd, mount_id, dfd, hfd;

	if (argc != 2) {
		fprintf(stderr, "usage: fanotify-probe DIR\n");
		return 2;
	}
	fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_NONBLOCK | FAN_CLOEXEC,
	    O_RDONLY | O_LARGEFILE);
	if (fd < 0) {
		printf("fanotify_init: %s\n", strerror(errno));
		return 1;
	}
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CREATE | FAN_ONDIR,
	    AT_FDCWD, argv[1]) < 0) {
		printf("fanotify_mark of '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	buf.fh.handle_bytes = sizeof buf.h;
	if (name_to_handle_at(AT_FDCWD, argv[1], &buf.fh, &mount_id, 0) < 0 ||
	    (dfd = open(argv[1], O_RDONLY | O_DIRECTORY)) < 0 ||
	    (hfd = open_by_handle_at(dfd, &buf.fh, O_PATH)) < 0) {
		printf("file handles on '%s': %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(hfd);
	close(dfd);
	close(fd);
	return 0;
}
