/* backup-commit.c: the users' runs committed on threads of their own. A
 * commit waits for the member's last chunks, writes them, fsyncs the archive
 * and records the run in the sidecar (more fsyncs): time spent mostly
 * waiting (on the deflate workers, on the disk), which the main thread now
 * spends reading and hashing the next users. What became of each user is
 * still told by the main thread, in the users' order, as commits end. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "cyrus/backup-int.h"

/* Sealed runs at most in flight: each holds its member's compressor. */
#define COMMIT_DEPTH 6
/* Threads committing: fsyncs of different archives on several threads are
 * one journal commit of the filesystem, not one each in turn. */
#define COMMIT_THREADS 4

/* One user, in order: its run to commit (s.ar NULL: none), then what to tell. */
struct commit_item {
	char *user;
	struct backup_sealed s;
	int rc;
	int wrote;
	int done;
	struct chj_error e;
};

struct backup_committer {
	pthread_t threads[COMMIT_THREADS];
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* an item was added or done, or stop */
	struct commit_item items[COMMIT_DEPTH];
	unsigned long head;         /* the next item to tell */
	unsigned long next;         /* the next item to take to commit */
	unsigned long tail;         /* the next free one */
	int stop;
};

static void *
committer_main(void *arg)
{
	struct backup_committer *c = arg;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct commit_item *it;
		struct chj_error e;
		int rc = 0;

		if (c->next == c->tail) {
			if (c->stop)
				break;
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		it = &c->items[c->next++ % COMMIT_DEPTH];
		pthread_mutex_unlock(&c->mu);
		memset(&e, 0, sizeof e);
		rc = backup_sealed_commit(&it->s, &e);
		pthread_mutex_lock(&c->mu);
		if (it->wrote && rc < 0) {
			it->rc = rc;
			it->wrote = 0;
			it->e = e;
		}
		it->done = 1;
		pthread_cond_broadcast(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int
backup_committer_start(struct cyrus_backup *b)
{
	struct backup_committer *c;

	if (b->committer != NULL)
		return 0;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	b->committer = c;
	while (c->started < COMMIT_THREADS &&
	    pthread_create(&c->threads[c->started], NULL, committer_main, c) == 0)
		c->started++;
	if (c->started == 0) {
		backup_committer_stop(b);
		return -1;
	}
	return 0;
}

/* Tells the items at the head that are done; with wait, waits for the
 * head until fewer than keep items are left. Called and returns unlocked. */
static void
tell_done(struct cyrus_backup *b, unsigned long keep)
{
	struct backup_committer *c = b->committer;
	int idle = 0;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct commit_item it;

		if (c->head == c->tail)
			break;
		if (!c->items[c->head % COMMIT_DEPTH].done) {
			if (c->tail - c->head < keep)
				break;
			/* a commit waits mostly for its member's last chunks: deflate
			 * queued ones here rather than wait; when none is, wait (the
			 * head checked again under the lock first) */
			if (b->pool != NULL && !idle) {
				pthread_mutex_unlock(&c->mu);
				idle = !arch_deflate_pool_help(b->pool);
				pthread_mutex_lock(&c->mu);
				continue;
			}
			idle = 0;
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		it = c->items[c->head % COMMIT_DEPTH];
		memset(&c->items[c->head % COMMIT_DEPTH], 0, sizeof it);
		c->head++;
		pthread_mutex_unlock(&c->mu);
		backup_told(b, it.user, it.rc, it.wrote, &it.e);
		free(it.user);
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
}

void
backup_committer_push(struct cyrus_backup *b, const char *user, int rc, struct backup_sealed *s,
    const struct chj_error *e)
{
	struct backup_committer *c = b->committer;
	struct commit_item *it;
	struct chj_error ce;
	char *u;

	if (c == NULL || (u = strdup(user)) == NULL) {
		/* no thread (or no memory for the name): committed here */
		if (s->ar != NULL) {
			memset(&ce, 0, sizeof ce);
			rc = backup_sealed_commit(s, &ce);
			backup_told(b, user, rc, rc == 0, rc < 0 ? &ce : e);
			return;
		}
		backup_told(b, user, rc, 0, e);
		return;
	}
	/* room for one more: the oldest told first */
	tell_done(b, COMMIT_DEPTH);
	pthread_mutex_lock(&c->mu);
	it = &c->items[c->tail % COMMIT_DEPTH];
	memset(it, 0, sizeof *it);
	it->user = u;
	it->rc = rc;
	it->wrote = s->ar != NULL;
	it->s = *s;
	memset(s, 0, sizeof *s);
	if (rc < 0 && e != NULL)
		it->e = *e;
	c->tail++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	tell_done(b, COMMIT_DEPTH);
}

void
backup_committer_drain(struct cyrus_backup *b)
{
	if (b->committer != NULL)
		tell_done(b, 1);
}

void
backup_committer_stop(struct cyrus_backup *b)
{
	struct backup_committer *c = b->committer;

	if (c == NULL)
		return;
	tell_done(b, 1);
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < c->started; i++)
		pthread_join(c->threads[i], NULL);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	b->committer = NULL;
}
