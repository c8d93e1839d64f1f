import type { Command } from 'commander';

// Placeholder until this command lands.
export function register(program: Command): void {
  program.command('doctor').action(() => {
    throw new Error('doctor: not implemented yet');
  });
}
