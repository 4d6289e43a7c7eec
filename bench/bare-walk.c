/* bare-walk.c: the benchmark's baseline for start-up. Watches every directory
 * below ROOT with the least work the kernel allows: a readdir walk that
 * trusts d_type, one inotify_add_watch per directory, no table at all.
 *
 *   bare-walk ROOT     prints "DIRS SECONDS" (the watches are released on exit)
 *   bare-walk -d ROOT  drains instead: counts the events already queued on an
 *                      inotify fd watching ROOT's directories, see below
 *
 * With -d it watches, prints "ready" on stdout, waits for a line on stdin,
 * then read()s the queue empty and prints "EVENTS SECONDS": the plain read()
 * loop that the daemon's drain rate is compared with. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE | \
	IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | \
	IN_DONT_FOLLOW | IN_EXCL_UNLINK)

static unsigned long ndirs;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Watches path (length len in buf of size cap) and everything below it. */
static void
walk(int ifd, char *buf, size_t len, size_t cap)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (inotify_add_watch(ifd, buf, MASK) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			fprintf(stderr, "bare-walk: cannot watch '%s': %s\n", buf, strerror(errno));
		return;
	}
	ndirs++;
	fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);

		if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || len + nl + 2 > cap)
			continue;
		buf[len] = '/';
		memcpy(buf + len + 1, de->d_name, nl + 1);
		walk(ifd, buf, len + 1 + nl, cap);
		buf[len] = '\0';
	}
	closedir(d);
}

int
main(int argc, char **argv)
{
	static char buf[65536], rbuf[256 * 1024];
	int drain = argc == 3 && strcmp(argv[1], "-d") == 0;
	const char *root = argv[argc - 1];
	double t0;
	int ifd;

	if (argc != 2 && !drain) {
		fprintf(stderr, "usage: bare-walk [-d] ROOT\n");
		return 2;
	}
	if (strlen(root) >= sizeof buf / 2) {
		fprintf(stderr, "bare-walk: root '%s' too long\n", root);
		return 2;
	}
	if ((ifd = inotify_init1(IN_CLOEXEC | (drain ? IN_NONBLOCK : 0))) < 0) {
		perror("bare-walk: inotify_init1");
		return 1;
	}
	strcpy(buf, root);
	t0 = now();
	walk(ifd, buf, strlen(buf), sizeof buf);
	if (!drain) {
		printf("%lu %.3f\n", ndirs, now() - t0);
		return 0;
	}
	{
		unsigned long events = 0;
		char line[64];
		ssize_t n;

		printf("ready\n");
		fflush(stdout);
		if (fgets(line, sizeof line, stdin) == NULL)
			return 1;
		t0 = now();
		while ((n = read(ifd, rbuf, sizeof rbuf)) > 0) {
			char *p;

			for (p = rbuf; p < rbuf + n;) {
				const struct inotify_event *ev = (const struct inotify_event *)p;

				events++;
				p += sizeof *ev + ev->len;
			}
		}
		printf("%lu %.3f\n", events, now() - t0);
	}
	return 0;
}
