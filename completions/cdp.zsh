#compdef cdp

_cdp_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _CDP_COMPLETE=complete_zsh cdp)
}

compdef _cdp_completion cdp
