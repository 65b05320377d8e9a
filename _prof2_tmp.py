import asyncio, cProfile, pstats, multiprocessing, sys, time
from benchmarks import bench_transport as b
from _prof_tmp import transport_only
async def main():
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=b._serve, args=(child,), daemon=True); server.start()
    url = f"http://127.0.0.1:{parent.recv()}/hook"
    await transport_only(url, 300, 50)
    pr=cProfile.Profile(); pr.enable()
    await transport_only(url, 3000, 50)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(30)
    pr=cProfile.Profile(); pr.enable()
    await b.run_raw(url, 3000, 50)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)
    server.terminate()
if __name__ == "__main__":
    asyncio.run(main())
