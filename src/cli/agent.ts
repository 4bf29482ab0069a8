export async function runAgentCommand(_argv: string[]): Promise<number> {
  process.stderr.write('agent: not implemented yet\n');
  return 1;
}
