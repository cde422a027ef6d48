/**
 * A TCP proxy on 127.0.0.1 in front of a real server, for tests that need a connection to fail in
 * a chosen way: cut, left hanging (accepted, never answered), cut when it next sends a request, or
 * cut when it sends bytes that contain a marker (e.g. a MongoDB client's appName in its handshake).
 * Connections are numbered in the order the proxy accepted them, from 1.
 */
import net from "node:net";

interface Link {
  n: number;
  client: net.Socket;
  upstream?: net.Socket;
  failOnNextRequest: boolean;
}

export class TcpProxy {
  private readonly links: Link[] = [];
  private hangBudget = 0;
  private refused: Buffer | undefined;

  private readonly server: net.Server;
  port = 0;

  private constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client, target));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  /** How many connections the proxy has accepted so far. */
  get accepted(): number {
    return this.links.length;
  }

  /** The next `count` connections are accepted and then left hanging: no byte is forwarded. */
  hangNext(count = 1): void {
    this.hangBudget += count;
  }

  /** Every connection that sends `marker` (from now on, until `refuse(undefined)`) is closed instead of forwarded. */
  refuse(marker: string | undefined): void {
    this.refused = marker === undefined ? undefined : Buffer.from(marker);
  }

  /** Closes connection `n` (both sides). */
  cut(n: number): void {
    const link = this.link(n);
    link.client.destroy();
    link.upstream?.destroy();
  }

  /** Connection `n` is closed, instead of forwarded, when it next sends anything. */
  failOnNextRequest(n: number): void {
    this.link(n).failOnNextRequest = true;
  }

  async stop(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private link(n: number): Link {
    const link = this.links[n - 1];
    if (!link) throw new Error(`the proxy has accepted ${this.links.length} connection(s); there is no #${n}`);
    return link;
  }

  private accept(client: net.Socket, target: { host: string; port: number }): void {
    const link: Link = { n: this.links.length + 1, client, failOnNextRequest: false };
    this.links.push(link);
    client.on("error", () => undefined);
    if (this.hangBudget > 0) {
      this.hangBudget--;
      return; // read nothing, answer nothing, until cut or stopped
    }
    const upstream = net.connect(target.port, target.host);
    link.upstream = upstream;
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("data", (chunk) => {
      if (link.failOnNextRequest || (this.refused && chunk.includes(this.refused))) {
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => client.write(chunk));
  }
}
