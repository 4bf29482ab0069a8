// Reading our processes' /metrics in e2e tests.

/** The value of one series, written exactly as exposed (`name{label="v",…}`), in a Prometheus text page; undefined when absent. */
export function seriesValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The /metrics page of a process serving on 127.0.0.1:`port`. */
export async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}
