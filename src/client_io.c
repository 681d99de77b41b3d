/* sockit client: the messages in (command line or stdin) and the replies
 * out (stdout), for both halves. Standard input is read one line at a time
 * between exchanges, whatever it is (pipe, file, terminal): --timeout is
 * for the server, never for the user typing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "reply.h"

void client_input_init(struct client_input *in, const struct client_opts *o)
{
    *in = (struct client_input){.msgs = o->msgs, .nmsgs = o->nmsgs};
}

int client_input_next(struct client_input *in, const char **msg, size_t *n)
{
    if (!client_input_is_stdin(in)) {
        if (in->next >= in->nmsgs)
            return 0;
        *msg = in->msgs[in->next++];
        *n = strlen(*msg);
        return 1;
    }
    ssize_t k = getline(&in->line, &in->cap, stdin);
    if (k < 0) {
        if (!ferror(stdin))
            return 0;
        cli_error("reading standard input: %s", strerror(errno));
        return -1;
    }
    if (k > 0 && in->line[k - 1] == '\n')
        k--;
    *msg = in->line;
    *n = (size_t)k;
    return 1;
}

void client_input_free(struct client_input *in)
{
    free(in->line);
    in->line = NULL;
}

const char *client_quote(const char *p, size_t n, char buf[CLIENT_QUOTE_CAP])
{
    reply_show(p, n <= CLIENT_QUOTE_MAX ? n : CLIENT_QUOTE_MAX + 1, buf, CLIENT_QUOTE_CAP);
    return buf;
}

bool client_print(const char *p, size_t n)
{
    if (fwrite(p, 1, n, stdout) == n && fputc('\n', stdout) != EOF && fflush(stdout) == 0)
        return true;
    return cli_stdout_ok(); /* false (ferror is set), with the message */
}
