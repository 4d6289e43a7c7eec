/* restore-csync-user.c: the user's state beside the folders, in a restore
 * into a running server (restore-csync.h). Not restored yet: subscriptions,
 * sieve scripts, quota roots and seen state of other users; this half only
 * tells the caller so, once per user. */
#include <string.h>

#include "cyrus/restore-csync.h"

int
rc_user_items(struct rc *r)
{
	struct cyrus_csync_event ev;

	memset(&ev, 0, sizeof ev);
	ev.user_items = 1;
	rc_tell(r, &ev);
	return 0;
}
