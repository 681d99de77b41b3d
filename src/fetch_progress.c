/* sockit fetch: a progress bar on stderr, only when stderr is a terminal,
 * only once a transfer has lasted long enough to need one, redrawn at most
 * ten times a second: the size so far, and with a known length the
 * percentage, the total and the time left. */
#include <stdio.h>
#include <string.h>

#include "fetch.h"
#include "i18n.h"

#define SHOW_AFTER_MS 300
#define REDRAW_MS 100

void fetch_progress_start(struct fetch_progress *pg, bool enabled, uint64_t total,
                          uint64_t done)
{
    memset(pg, 0, sizeof *pg);
    pg->enabled = enabled;
    pg->total = total;
    pg->done = pg->base = done;
    pg->start_ms = pg->last_ms = enabled ? sk_now_ms() : 0;
}

static void human(char *buf, size_t len, double v)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, unit[i]);
}

/* "M:SS" or "H:MM:SS" for secs; "--:--" when it cannot be told. */
static void clock_text(char *buf, size_t len, double secs)
{
    if (!(secs >= 0 && secs < 100.0 * 3600)) {
        snprintf(buf, len, "--:--");
        return;
    }
    unsigned long t = (unsigned long)(secs + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
}

/* One frame: from the line's start, and the rest of the line cleared
 * (ESC [ K), so that a shorter frame leaves nothing of a longer one. */
static void draw(struct fetch_progress *pg, uint64_t now)
{
    double secs = (double)(now - pg->start_ms) / 1000.0;
    double speed = secs > 0 ? (double)(pg->done - pg->base) / secs : 0;
    char done[32], rate[32];
    human(done, sizeof done, (double)pg->done);
    human(rate, sizeof rate, speed);
    if (pg->total) {
        uint64_t d = pg->done < pg->total ? pg->done : pg->total;
        int pct = (int)(d * 100 / pg->total);
        int fill = pct * 30 / 100;
        char bar[31], total[32], left[32];
        memset(bar, '=', (size_t)fill);
        memset(bar + fill, ' ', (size_t)(30 - fill));
        bar[30] = '\0';
        human(total, sizeof total, (double)pg->total);
        clock_text(left, sizeof left, speed > 0 ? (double)(pg->total - d) / speed : -1);
        fprintf(stderr, "\r%3d%% [%s] %s / %s, %s/s, %s left\033[K", pct, bar, done, total, rate,
                left);
    } else {
        fprintf(stderr, "\r%s, %s/s\033[K", done, rate);
    }
    pg->drawn = true;
}

void fetch_progress_update(struct fetch_progress *pg, uint64_t done)
{
    pg->done = done;
    if (!pg->enabled)
        return;
    uint64_t now = sk_now_ms();
    if (now - pg->start_ms < SHOW_AFTER_MS || now - pg->last_ms < REDRAW_MS)
        return;
    pg->last_ms = now;
    draw(pg, now);
}

void fetch_progress_end(struct fetch_progress *pg)
{
    if (pg->enabled && pg->drawn) {
        draw(pg, sk_now_ms());
        fputc('\n', stderr);
    }
}

void fetch_board_clear(struct fetch_board *b)
{
    for (; b->drawn; b->drawn--)
        fputs("\033[1A\r\033[2K", stderr); /* up one line, cleared */
    (void)fflush(stderr);
}

void fetch_board_draw(struct fetch_board *b, const struct fetch_board_row *rows, unsigned n,
                      size_t done, size_t total, bool force)
{
    uint64_t now = sk_now_ms();
    if (!force && now - b->last_ms < REDRAW_MS)
        return;
    b->last_ms = now;
    fetch_board_clear(b);
    uint64_t bytes = 0;
    unsigned active = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!rows[i].name)
            continue;
        char got[32], all[32] = "?";
        human(got, sizeof got, (double)rows[i].pg->done);
        if (rows[i].pg->total)
            human(all, sizeof all, (double)rows[i].pg->total);
        fprintf(stderr, "  %.60s  %s / %s\033[K\n", rows[i].name, got, all);
        bytes += rows[i].pg->done;
        active++;
        b->drawn++;
    }
    char got[32];
    human(got, sizeof got, (double)bytes);
    fprintf(stderr, _("%zu of %zu done, %u under way, %s"), done, total, active, got);
    fputs("\033[K\n", stderr);
    b->drawn++;
    (void)fflush(stderr);
}
