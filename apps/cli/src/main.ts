console.log('shelf: CLI under construction');
