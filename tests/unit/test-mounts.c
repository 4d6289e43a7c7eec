/* test-mounts.c: the mountinfo parser, lookups, states and their diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mounts.h"
#include "unit-tmp.h"

static const char *sample =
	"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"30 22 0:25 / /srv/spool\\040one rw shared:2 - tmpfs tmp\\040fs rw\n"
	"31 30 0:26 / /srv/spool\\040one/sub rw - tmpfs none rw\n"
	"32 22 254:0 /data/x /srv/bind rw - ext4 /dev/vda rw\n"
	"garbage line\n"
	"33 22 0:27 / /srv/spool\\040one/sub rw - tmpfs over rw\n";

struct seen {
	char *paths[16];
	int n;
};

static int
collect(void *ctx, const char *path)
{
	struct seen *s = ctx;

	if (s->n < 16)
		s->paths[s->n++] = strdup(path);
	return 0;
}

static void
seen_free(struct seen *s)
{
	while (s->n > 0)
		free(s->paths[--s->n]);
}

static void
test_parse(void **state)
{
	struct mount_table t = { 0 };

	(void)state;
	assert_int_equal(mount_table_parse(&t, sample, strlen(sample)), 0);
	assert_int_equal(t.n, 5);                 /* the garbage line is skipped */
	assert_string_equal(t.v[1].point, "/srv/spool one");
	assert_string_equal(t.v[1].source, "tmp fs");
	assert_int_equal(t.v[1].major, 0);
	assert_int_equal(t.v[1].minor, 25);
	assert_string_equal(t.v[3].root, "/data/x");
	assert_int_equal(t.v[4].id, 33);
	assert_int_equal(t.v[4].parent, 22);
	mount_table_free(&t);
}

static void
test_lookup(void **state)
{
	struct mount_table t = { 0 };

	(void)state;
	assert_int_equal(mount_table_parse(&t, sample, strlen(sample)), 0);
	assert_int_equal(mount_table_of(&t, "/etc/passwd")->id, 22);
	assert_int_equal(mount_table_of(&t, "/srv/spool one/a")->id, 30);
	/* two mounts on one point: the later is on top */
	assert_int_equal(mount_table_of(&t, "/srv/spool one/sub/x")->id, 33);
	assert_int_equal(mount_table_of(&t, "/srv/spool one/subway")->id, 30);
	mount_table_free(&t);
}

/* The places that show a root's files: the root's directory mounted
 * elsewhere (wholly, or within a mount of a directory above it), and a
 * directory below it mounted elsewhere; not a mount of another directory or
 * of another file system, nor the root itself. */
static const char *bind_sample =
	"22 1 254:0 / / rw - ext4 /dev/vda rw\n"
	"40 22 254:0 /srv/mail /chroot/imap/var/spool rw - ext4 /dev/vda rw\n"
	"41 22 254:0 /srv/mail/user/a /mnt/a rw - ext4 /dev/vda rw\n"
	"42 22 254:0 /srv /mnt/srv rw - ext4 /dev/vda rw\n"
	"43 22 254:0 /home /mnt/home rw - ext4 /dev/vda rw\n"
	"44 22 0:30 / /mnt/other rw - tmpfs t rw\n"
	"45 22 254:0 /srv/mailbox /mnt/box rw - ext4 /dev/vda rw\n";

static const char *
translated(const struct mount_alias *v, size_t n, const char *path)
{
	static char buf[256];

	return mount_alias_translate(v, n, path, strlen(path), buf, sizeof buf);
}

static void
test_aliases(void **state)
{
	struct mount_table t = { 0 };
	struct mount_alias *v = NULL;
	size_t n = 0, cap = 0;

	(void)state;
	assert_int_equal(mount_table_parse(&t, bind_sample, strlen(bind_sample)), 0);
	assert_int_equal(mount_table_aliases(&t, "/srv/mail", &v, &n, &cap), 0);
	assert_int_equal(n, 3);
	assert_string_equal(translated(v, n, "/chroot/imap/var/spool/user/b/1."), "/srv/mail/user/b/1.");
	assert_string_equal(translated(v, n, "/chroot/imap/var/spool"), "/srv/mail");
	assert_string_equal(translated(v, n, "/mnt/a/2."), "/srv/mail/user/a/2.");
	assert_string_equal(translated(v, n, "/mnt/srv/mail/x"), "/srv/mail/x");
	assert_null(translated(v, n, "/mnt/srv/mailbox/x"));
	assert_null(translated(v, n, "/mnt/srv/other"));
	assert_null(translated(v, n, "/mnt/home/x"));
	assert_null(translated(v, n, "/mnt/box/x"));
	assert_null(translated(v, n, "/mnt/other/x"));
	assert_null(translated(v, n, "/srv/mail/x"));
	mount_aliases_free(v, n);

	/* a root seen through a bind mount: the file system's own place is an
	 * alias of it, the root's mount is not */
	v = NULL;
	n = cap = 0;
	assert_int_equal(mount_table_aliases(&t, "/chroot/imap/var/spool/user", &v, &n, &cap), 0);
	assert_int_equal(n, 3);
	assert_string_equal(translated(v, n, "/srv/mail/user/c"), "/chroot/imap/var/spool/user/c");
	assert_string_equal(translated(v, n, "/mnt/a/3."), "/chroot/imap/var/spool/user/a/3.");
	assert_string_equal(translated(v, n, "/mnt/srv/mail/user"), "/chroot/imap/var/spool/user");
	assert_null(translated(v, n, "/srv/mail/other"));
	mount_aliases_free(v, n);
	mount_table_free(&t);
}

static void
test_state_and_diff(void **state)
{
	struct mount_table t = { 0 };
	struct seen s = { { 0 }, 0 };
	char *before, *after, *root_state;
	const char *more = "34 30 0:28 / /srv/spool\\040one/new\\012dir rw - tmpfs n rw\n";
	char *text2 = malloc(strlen(sample) + strlen(more) + 1);

	(void)state;
	assert_int_equal(mount_table_parse(&t, sample, strlen(sample)), 0);
	before = mount_table_state(&t, "/srv/spool one");
	/* the holder (30, at the root) and the two below it */
	assert_non_null(strstr(before, "/srv/spool\\040one\t0:25\t/\ttmpfs\n"));
	assert_non_null(strstr(before, "/srv/spool\\040one/sub\t0:26\t/\ttmpfs\n"));
	assert_non_null(strstr(before, "/srv/spool\\040one/sub\t0:27\t/\ttmpfs\n"));
	assert_null(strstr(before, "/srv/bind"));
	root_state = mount_table_state(&t, "/etc");
	assert_string_equal(root_state, "/\t254:0\t/\text4\n");
	free(root_state);

	strcpy(text2, sample);
	strcat(text2, more);
	assert_int_equal(mount_table_parse(&t, text2, strlen(text2)), 0);
	after = mount_table_state(&t, "/srv/spool one");
	/* a mount added below the root (a newline in its name) */
	assert_int_equal(mount_state_diff("/srv/spool one", before, after, collect, &s), 1);
	assert_string_equal(s.paths[0], "/srv/spool one/new\ndir");
	seen_free(&s);
	/* the same unmounted: its mount point's parent (here, the root) does
	 * not exist on this machine, so where it was is unknown: the root */
	assert_int_equal(mount_state_diff("/srv/spool one", after, before, collect, &s), 1);
	assert_string_equal(s.paths[0], "/srv/spool one");
	seen_free(&s);
	assert_int_equal(mount_state_diff("/srv/spool one", after, after, collect, &s), 0);
	/* the mount holding the root replaced (remounted elsewhere from): the root */
	assert_int_equal(mount_state_diff("/srv/spool one/sub",
	    "/srv/spool\\040one/sub\t0:27\t/\ttmpfs\n",
	    "/srv/spool\\040one/sub\t0:29\t/\ttmpfs\n", collect, &s), 2);
	assert_string_equal(s.paths[0], "/srv/spool one/sub");
	seen_free(&s);
	assert_int_equal(mount_state_diff("/a/b", "/\t254:0\t/\text4\n", "/a\t0:30\t/\ttmpfs\n",
	    collect, &s), 2);
	assert_string_equal(s.paths[0], "/a/b");
	assert_string_equal(s.paths[1], "/a/b");
	seen_free(&s);
	free(before);
	free(after);
	free(text2);
	mount_table_free(&t);
}

/* Unmounts: at the mount point when its parent exists; moved (the same
 * mount at another place) at both places; gone from a place whose parent is
 * gone (a directory above renamed before the table was read again): the
 * root, as where its covered files are now is unknown. */
static void
test_diff_unmount_places(void **state)
{
	char dir[PATH_MAX], root[PATH_MAX], sub[PATH_MAX + 8], before[3 * PATH_MAX + 128];
	char after[PATH_MAX + 64], want[PATH_MAX + 16];
	struct seen s = { { NULL }, 0 };

	(void)state;
	assert_non_null(unit_tmpdir(dir, sizeof dir, "mounts"));
	snprintf(root, sizeof root, "%s", dir);
	snprintf(sub, sizeof sub, "%s/x", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(before, sizeof before, "%s/x/m\t0:40\t/\ttmpfs\n%s/gone/m\t0:41\t/\ttmpfs\n"
	    "%s/x/moved\t0:42\t/\ttmpfs\n", dir, dir, dir);
	snprintf(after, sizeof after, "%s/y/moved\t0:42\t/\ttmpfs\n", dir);
	assert_int_equal(mount_state_diff(root, before, after, collect, &s), 4);
	snprintf(want, sizeof want, "%s/x/m", dir);
	assert_string_equal(s.paths[0], want);
	assert_string_equal(s.paths[1], root);                 /* gone/m */
	snprintf(want, sizeof want, "%s/x/moved", dir);
	assert_string_equal(s.paths[2], want);                 /* moved: its old place */
	snprintf(want, sizeof want, "%s/y/moved", dir);
	assert_string_equal(s.paths[3], want);                 /* ... and its new one */
	seen_free(&s);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void
test_read_self(void **state)
{
	struct mount_table t = { 0 };

	(void)state;
	assert_int_equal(mount_table_read(&t, -1), 0);
	assert_true(t.n > 0);
	assert_non_null(mount_table_of(&t, "/"));
	mount_table_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_state_and_diff),
		cmocka_unit_test(test_diff_unmount_places),
		cmocka_unit_test(test_read_self),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
