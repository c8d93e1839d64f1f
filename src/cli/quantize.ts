import type { Command } from 'commander';

// Placeholder until this command lands.
export function register(program: Command): void {
  program.command('quantize').action(() => {
    throw new Error('quantize: not implemented yet');
  });
}
