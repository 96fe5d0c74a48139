"""The workers' Redis transport: kombu's, keeping a running step's message through a broker restart.

When a worker loses its broker connection, kombu closes the channel and puts every message it
has not acknowledged back on the queue ("Restoring N unacknowledged message(s)"). With late
acks that is each step still running: if the broker were reachable at that moment, the step
would be handed out again beside itself; when it is not (a restart), kombu 5.7 fails there with
an AttributeError and the worker stops. Here nothing is restored on close: the step runs on,
its message stays in the broker's `unacked` hash (kept in Redis's append-only file), and is
acknowledged when the step ends, through a new connection to the same broker. Messages of
steps whose process died are handed back by Celery (reject, retry on worker lost) or by the
next worker of the same name (`lume_v6_dagster.worker.restore_orphans`), never by this close.
"""

from __future__ import annotations

from kombu.transport import redis


class Channel(redis.Channel):
    do_restore = False

    def _connparams(self, asynchronous=False):
        """The broker's address, also after the channel closed (an acknowledgement may come later)."""
        if getattr(self.connection, "client", None) is None and not asynchronous:  # closed: detached from its transport
            return dict(self._last_connparams)
        params = super()._connparams(asynchronous=asynchronous)
        if not asynchronous:
            self._last_connparams = dict(params)
        return params


class Transport(redis.Transport):
    Channel = Channel
