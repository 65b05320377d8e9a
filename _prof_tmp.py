import asyncio, cProfile, pstats, multiprocessing, sys, time
from benchmarks import bench_transport as b
from webhookkit.transports.http import HTTPTransport
from webhookkit.transports.base import OutboundMessage
async def transport_only(url, count, conc):
    t=HTTPTransport(allow_addresses=["127.0.0.1/32"])
    sem=asyncio.Semaphore(conc)
    body=b'{"order":{"id":"T3JkZXI6MQ==","number":"1"}}'
    async def one():
        async with sem:
            r=await t.send(OutboundMessage(url=url, body=body, event="order_created", domain="shop.example.com", api_url="https://shop.example.com/graphql/", signature="abc"))
            assert r.ok
    st=time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    el=time.perf_counter()-st
    await t.aclose()
    return count/el
async def main():
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=b._serve, args=(child,), daemon=True); server.start()
    url = f"http://127.0.0.1:{parent.recv()}/hook"
    await b.run_raw(url, 300, 50); await transport_only(url, 300, 50)
    for i in range(3):
        print("raw", await b.run_raw(url, 2000, 50), "transport", await transport_only(url, 2000, 50), "pipeline", await b.run_pipeline(url, 2000, 50, False, False))
    if len(sys.argv)>1:
        pr=cProfile.Profile(); pr.enable()
        r=await b.run_pipeline(url, 3000, 50, False, False)
        pr.disable(); print(r)
        pstats.Stats(pr).sort_stats("tottime").print_stats(40)
    server.terminate()
if __name__ == "__main__":
    asyncio.run(main())
