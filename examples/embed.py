"""A Twisted program that embeds asud: its own page at ``/``, asud's whole HTTP surface under ``/asud``.

    python examples/embed.py [asud.toml] [ENDPOINT]      # ENDPOINT default: tcp:8080:interface=127.0.0.1

asud opens no port of its own (``[http] listen = []``); the host mounts ``service.resource`` in its
``Site`` and runs the service inside its own service tree. It listens once asud has started (catalog
loaded), and on SIGTERM ``stopService`` waits until running builds are back in the queue.
"""

import sys

from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site

import asud.config
import asud.service


class HostPage(Resource):
    isLeaf = True

    def render_GET(self, request: object) -> bytes:
        return b'<h1>My program</h1><p>Firmware builds: <a href="/asud/">asud</a></p>'


def main(config_path: str | None = None, endpoint: str = "tcp:8080:interface=127.0.0.1") -> None:
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)])
    host = MultiService()
    config = asud.config.load(config_path, http={"listen": []})
    service = asud.service.makeService(config)
    service.setServiceParent(host)

    root = Resource()
    root.putChild(b"", HostPage())
    root.putChild(b"asud", service.resource)

    def listen(_: object) -> object:
        return serverFromString(reactor, endpoint).listen(Site(root)).addCallback(
            lambda port: print(f"host listening on {port.getHost()}", flush=True))

    service.started.addCallback(listen).addErrback(lambda failure: reactor.stop())
    host.startService()
    reactor.addSystemEventTrigger("before", "shutdown", host.stopService)
    reactor.run()


if __name__ == "__main__":
    main(*sys.argv[1:3])
