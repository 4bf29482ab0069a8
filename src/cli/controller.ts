export async function runControllerCommand(_argv: string[]): Promise<number> {
  process.stderr.write('controller: not implemented yet\n');
  return 1;
}
